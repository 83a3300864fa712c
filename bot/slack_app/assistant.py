"""routerbot as a Slack AI app: its Messages tab and direct messages.

What a user sees, and the events behind it:

* Opening the Messages tab (``app_home_opened`` with ``tab: "messages"``, the agent view) or a
  new assistant thread (``assistant_thread_started``, the older assistant view) sets up to four
  suggested prompts (:mod:`bot.slack_app.prompts`).
* A message to routerbot (``message.im``) is a chat. A message outside a thread starts a new
  conversation in its own thread (the agent view's threads); a reply in a thread that holds a
  routerbot conversation continues it; in the assistant view, the first message of its thread
  starts one. A new conversation's thread is titled from its first prompt, and a status with
  loading messages shows until the answer's first text (Slack clears it when the app posts).
  The answer streams natively into the thread and ends with the cost footer, as ``/chat``
  answers do (:func:`bot.slack_app.chat.render_chat`). Budgets, policies and the allowlist
  apply as everywhere; the "channel" is the user's DM with routerbot.
* A message that is a routerbot command (``/models``, ``/costs``, ``/help``, or ``/chat
  --model …``: what the default suggested prompts send) is run as that command, answered in
  the thread; other commands are left to the slash-command menu.
* Slack's Stop (``agent_session_stopped``) ends the thread's answers (:mod:`bot.slack_app.stops`,
  :func:`bot.core.stopping.stoppable`): the partial text stays, marked stopped, and the chat is
  recorded by the core with what it is known to cost.

slack-bolt's ``Assistant`` middleware is not used: its default thread-context store reads
``conversations.history``, which Slack now limits to one request a minute for apps outside the
Marketplace, and routerbot keeps its conversations in its own database anyway.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import commands as c
from bot.core.chat.attachments import Attachment
from bot.core.errors import UserFacingError
from bot.core.lifecycle import AnswerTasks
from bot.core.permissions import needs_admin
from bot.core.replies import CostsReply, ErrorReply, Invocation, Reply, TextReply
from bot.core.stopping import stoppable
from bot.runtime import Runtime
from bot.slack_app.admin import AdminCheckFailed
from bot.slack_app.chat import ChatTarget, render_chat
from bot.slack_app.errors import error_code
from bot.slack_app.files import chart_in_thread
from bot.slack_app.handlers import Handlers
from bot.slack_app.notify import EventNotifier
from bot.slack_app.payloads import anchor, is_human_message
from bot.slack_app.prompts import TITLE, suggested_prompts
from bot.slack_app.stops import Flight, StopSignals
from bot.slack_app.text import strip_mention, unescape

log = logging.getLogger(__name__)

STATUS = "is thinking…"
LOADING_MESSAGES = [
    "Sending your question to the model…",
    "Waiting for the first words…",
    "Counting tokens and cents…",
]
TITLE_LENGTH = 60
#: Commands answered when sent as a message; the rest need the slash-command menu.
MESSAGE_COMMANDS = (c.Help, c.ModelsList, c.ModelsRecommended, c.Costs)
SLASH_ONLY = (
    "Run `/{word}` from the message box (type it and pick it from the menu): sent as a "
    "message I only answer /models, /costs, /help and /chat."
)


async def continue_thread(
    runtime: Runtime,
    ctx: Invocation,
    thread_anchor: str,
    text: str,
    attachments: tuple[Attachment, ...] = (),
) -> AsyncGenerator[Reply, None] | None:
    """The replies continuing the conversation anchored at ``thread_anchor``, or None when
    the thread holds none."""
    conversation = await runtime.dispatcher.find_conversation(ctx, thread_anchor)
    if conversation is None:
        return None
    return runtime.dispatcher.follow_up(ctx, conversation, text, attachments=attachments)


def thread_title(prompt: str) -> str:
    """A thread's title from its first prompt: the first line, cut at a word."""
    line = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "Chat")
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[: TITLE_LENGTH - 1].rsplit(" ", 1)[0] or line[: TITLE_LENGTH - 1]
    return cut.rstrip(" ,;:.") + "…"


class Assistant:
    def __init__(
        self,
        handlers: Handlers,
        *,
        session: aiohttp.ClientSession,
        stops: StopSignals,
        tasks: AnswerTasks,
    ) -> None:
        self.handlers = handlers
        self.runtime = handlers.runtime
        self.session = session
        self.stops = stops
        self.tasks = tasks
        self.prompts = suggested_prompts(handlers.runtime.settings)

    # -- suggested prompts ----------------------------------------------------------------

    async def messages_tab_opened(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """Agent view: the prompts pin to the top of the Messages tab (no thread)."""
        await self._set_prompts(client, str(event.get("channel") or ""), None)

    async def thread_started(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """Assistant view: each new assistant thread gets the prompts."""
        thread = event.get("assistant_thread") or {}
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if channel and thread_ts:
            await self._set_prompts(client, str(channel), str(thread_ts))

    async def _set_prompts(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None
    ) -> None:
        if not self.prompts or not channel:
            return
        try:
            await client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=thread_ts, title=TITLE, prompts=self.prompts
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not set suggested prompts: %s", error_code(exc))

    # -- messages -------------------------------------------------------------------------

    async def message(
        self, event: dict[str, Any], *, team_id: str, client: AsyncWebClient, bot_user_id: str
    ) -> None:
        """A direct message to routerbot (see the module docstring)."""
        if not is_human_message(event, bot_user_id):
            return
        channel, user, ts = str(event.get("channel", "")), str(event["user"]), str(event["ts"])
        thread_ts = event.get("thread_ts")
        root = str(thread_ts or ts)
        text = unescape(strip_mention(str(event.get("text", "")), bot_user_id))
        if not text or not await self.handlers.claim(f"message:{team_id}:{channel}:{ts}"):
            return
        ctx = self.handlers.invocation(team_id, channel, user, name=None)
        notify = EventNotifier(client, channel=channel, user=user, thread_ts=root)

        async def work() -> None:
            command = as_command(text)
            if command is not None and not isinstance(command, c.Chat):
                await self._run_command(ctx, text, command, client, notify, root)
                return
            files = await self.handlers.attachments(event, client, notify)
            if files is None:
                return
            replies: AsyncGenerator[Reply, None] | None = None
            if thread_ts and thread_ts != ts:
                where = anchor(channel, root)
                replies = await continue_thread(self.runtime, ctx, where, text, files)
            if replies is None:
                chat = command if isinstance(command, c.Chat) else c.Chat(prompt=text)
                chat = dataclasses.replace(chat, attachments=files)
                await self._title(client, channel, root, chat.prompt)
                replies = self.runtime.dispatcher.run(ctx, chat, anchors=[anchor(channel, root)])
            await self._answer(ctx, replies, client, notify, root)

        await self.handlers.safely(notify, work)

    async def _run_command(
        self,
        ctx: Invocation,
        text: str,
        command: c.Command | str,
        client: AsyncWebClient,
        notify: EventNotifier,
        root: str,
    ) -> None:
        # The DM is the user's own, so even private replies can go in its thread.
        if isinstance(command, str):
            await notify.public(command)
            return
        if not isinstance(command, MESSAGE_COMMANDS):
            await notify.public(SLASH_ONLY.format(word=text[1:].split()[0].lower()))
            return
        try:
            admin = needs_admin(command) and await self.handlers.is_admin(
                client, ctx.workspace_id, ctx.user_id
            )
        except AdminCheckFailed as exc:
            await notify.public(str(exc))
            return
        async for reply in self.runtime.dispatcher.run(
            dataclasses.replace(ctx, is_admin=admin), command
        ):
            if isinstance(reply, TextReply | ErrorReply):
                await notify.public(reply.text)
            if isinstance(reply, CostsReply) and reply.chart is not None:
                await chart_in_thread(
                    client, self.session, reply.chart, channel_id=ctx.channel_id, thread_ts=root
                )

    async def _answer(
        self,
        ctx: Invocation,
        replies: AsyncGenerator[Reply, None],
        client: AsyncWebClient,
        notify: EventNotifier,
        root: str,
    ) -> None:
        channel = ctx.channel_id
        flight = self.stops.begin(ctx.workspace_id, channel, root)
        try:
            await self._status(client, channel, root, STATUS, LOADING_MESSAGES)
            target = ChatTarget(
                client,
                ctx.workspace_id,
                channel,
                root,
                notify,
                user_id=ctx.user_id,
                on_stream_ended=lambda: self._look_for_stop(flight),
            )
            outcome = await render_chat(
                stoppable(replies, flight.stop, check=lambda: self.stops.requested(flight)),
                target,
                self.handlers.streaming,
                self.handlers.journal,
            )
            if outcome.stream is None:
                # Nothing was posted in the thread (a refusal goes to the user alone), so
                # Slack has not cleared the status.
                await self._status(client, channel, root, "", None)
        finally:
            self.stops.end(flight)

    def _look_for_stop(self, flight: Flight) -> None:
        if not flight.stop.is_set():
            self.tasks.spawn(self._stop_if_requested(flight), name="slack stop check")

    async def _stop_if_requested(self, flight: Flight) -> None:
        await self.stops.requested(flight)

    async def _title(self, client: AsyncWebClient, channel: str, root: str, prompt: str) -> None:
        try:
            await client.assistant_threads_setTitle(
                channel_id=channel, thread_ts=root, title=thread_title(prompt)
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not title an assistant thread: %s", error_code(exc))

    async def _status(
        self,
        client: AsyncWebClient,
        channel: str,
        root: str,
        status: str,
        loading: list[str] | None,
    ) -> None:
        # Best effort: a workspace without Slack's AI features still gets its answer.
        try:
            await client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=root, status=status, loading_messages=loading
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not set an assistant thread's status: %s", error_code(exc))

    # -- Stop -----------------------------------------------------------------------------

    async def stopped(self, event: dict[str, Any], *, team_id: str) -> None:
        channel, thread_ts = str(event.get("channel") or ""), str(event.get("thread_ts") or "")
        if not channel or not thread_ts:
            return
        here = await self.stops.stop(team_id, channel, thread_ts)
        log.info("Stop pressed: %d answer(s) stopped here, others signalled", here)


def as_command(text: str) -> c.Command | str | None:
    """The routerbot command a message is (or the sentence why it is not a valid one); None
    when it is not a command at all ("/etc/hosts …" is a question)."""
    if not text.startswith("/"):
        return None
    words = text[1:].split(maxsplit=1)
    if not words or words[0].lower() not in c.COMMAND_WORDS:
        return None
    try:
        return c.parse(text)
    except UserFacingError as exc:
        return exc.message
