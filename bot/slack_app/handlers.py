"""The work behind each Slack request, run after the ack: commands, the key form, follow-ups.

Each handler first claims its delivery in the database (the store's event claims), so a
retried or duplicated request (on this process or another) does its work once:

* slash commands by ``trigger_id`` (unique per invocation; Slack does not retry commands, but a
  proxy or a double delivery could),
* messages and mentions by ``team:channel:ts`` of the user's message. That key is stabler than
  ``event_id``: it also collapses the ``message`` and ``app_mention`` events Slack sends for one
  message that mentions the bot in a thread, and it is the same on every retry.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import claims
from bot.core import commands as c
from bot.core.chat.attachments import Attachment, AttachmentRefused
from bot.core.dispatch import failure_sentence
from bot.core.errors import UserFacingError
from bot.core.inflight import AnswerJournal
from bot.core.permissions import needs_admin
from bot.core.ports import ConversationRef
from bot.core.replies import (
    CostsReply,
    ErrorReply,
    Invocation,
    KeyPromptReply,
    Reply,
    TextReply,
)
from bot.runtime import Runtime
from bot.slack_app.admin import AdminCache, AdminCheckFailed
from bot.slack_app.chat import ChatTarget, SlackStreaming, render_chat
from bot.slack_app.errors import error_code
from bot.slack_app.files import chart_for_command
from bot.slack_app.files_in import files_of
from bot.slack_app.modal import ModalOrigin, key_modal
from bot.slack_app.notify import EventNotifier, Notifier, ResponseUrlNotifier
from bot.slack_app.payloads import (
    SlashCommand,
    anchor,
    is_human_message,
    slack_channel,
    slack_user,
)
from bot.slack_app.text import quote, strip_mention, unescape

log = logging.getLogger(__name__)

PLATFORM = "slack"
MODAL_EXPIRED = (
    "The key form could not be opened in time; run /apikey again, or use /apikey set <key>."
)
EMPTY_MENTION = "Ask me something after the mention, e.g. `@routerbot what is a monad?`."


class Handlers:
    def __init__(
        self,
        runtime: Runtime,
        *,
        session: aiohttp.ClientSession,
        admin_cache: AdminCache,
        streaming: SlackStreaming,
    ) -> None:
        self.runtime = runtime
        self.session = session
        self.admin_cache = admin_cache
        self.streaming = streaming
        #: Set by the front-end: answers in flight, finished by another process if this dies.
        self.journal: AnswerJournal | None = None

    # -- shared ------------------------------------------------------------------------------

    async def claim(self, key: str) -> bool:
        return await claims.claim(self.runtime.store, PLATFORM, key)

    async def is_admin(self, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
        if f"{PLATFORM}:{user_id}" in self.runtime.settings.admins:
            return True  # no users.info call needed
        return await self.admin_cache.is_admin(client, team_id=team_id, user_id=user_id)

    @staticmethod
    def invocation(
        team_id: str, channel_id: str, user_id: str, *, is_admin: bool = False, name: str | None
    ) -> Invocation:
        return Invocation(
            platform=PLATFORM,
            workspace_id=team_id,
            channel_id=channel_id,
            user_id=user_id,
            is_admin=is_admin,
            workspace_name=name,
            format_user=slack_user,
            format_channel=slack_channel,
        )

    async def attachments(
        self, event: dict[str, Any], client: AsyncWebClient, notify: Notifier
    ) -> tuple[Attachment, ...] | None:
        """The files of ``event``, downloaded; None (the user told why) when one is refused."""
        try:
            api_url = self.runtime.settings.slack_api_url
            return await files_of(event, client, self.session, api_url=api_url)
        except AttachmentRefused as exc:
            await notify.private(exc.message)
            return None

    @staticmethod
    async def safely(notify: Notifier, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work``; anything unexpected becomes one sentence for the user, never a trace."""
        try:
            await work()
        except Exception as exc:
            log.exception("Slack handler failed")
            try:
                await notify.private(failure_sentence(exc))
            except Exception:
                log.exception("could not tell the user about the failure")

    async def _render(
        self, reply: Reply, notify: Notifier, client: AsyncWebClient, modal: tuple[str, ModalOrigin]
    ) -> None:
        match reply:
            case TextReply(text=text, private=private):
                await (notify.private(text) if private else notify.public(text))
            case ErrorReply(text=text):
                await notify.private(text)
            case KeyPromptReply(provider=provider):
                trigger_id, origin = modal
                origin = ModalOrigin(origin.channel_id, origin.response_url, provider)
                try:
                    await client.views_open(trigger_id=trigger_id, view=key_modal(origin))
                except SlackApiError as exc:
                    log.warning("views.open failed: %s", error_code(exc))
                    await notify.private(MODAL_EXPIRED)
            case _:
                log.warning("unexpected reply outside a chat: %s", type(reply).__name__)

    # -- slash commands ----------------------------------------------------------------------

    async def command(self, cmd: SlashCommand, client: AsyncWebClient) -> None:
        notify = ResponseUrlNotifier(self.session, cmd.response_url)
        await self.safely(notify, lambda: self._command(cmd, client, notify))

    async def _command(
        self, cmd: SlashCommand, client: AsyncWebClient, notify: ResponseUrlNotifier
    ) -> None:
        if not await self.claim(f"command:{cmd.trigger_id}"):
            return
        try:
            command = c.parse(f"/{cmd.word} {cmd.text}")
        except UserFacingError as exc:
            await notify.private(exc.message)
            return
        try:
            admin = needs_admin(command) and await self.is_admin(client, cmd.team_id, cmd.user_id)
        except AdminCheckFailed as exc:
            await notify.private(str(exc))
            return
        ctx = self.invocation(
            cmd.team_id, cmd.channel_id, cmd.user_id, is_admin=admin, name=cmd.team_domain
        )
        dispatcher = self.runtime.dispatcher
        if isinstance(command, c.Chat):
            prompt = command.prompt

            def header(model: str) -> str:
                return f"{slack_user(cmd.user_id)} asked `{model}`:\n{quote(prompt)}"

            anchors: list[str] = []
            target = ChatTarget(
                client,
                cmd.team_id,
                cmd.channel_id,
                None,
                notify,
                header,
                user_id=cmd.user_id,
                anchors=anchors,
            )
            await render_chat(
                dispatcher.run(ctx, command, anchors=anchors), target, self.streaming, self.journal
            )
            return
        modal = (cmd.trigger_id, ModalOrigin(cmd.channel_id, cmd.response_url, None))
        async for reply in dispatcher.run(ctx, command):
            await self._render(reply, notify, client, modal)
            if isinstance(reply, CostsReply) and reply.chart is not None:
                await chart_for_command(
                    client,
                    self.session,
                    reply.chart,
                    channel_id=cmd.channel_id,
                    response_url=cmd.response_url,
                    private=reply.private,
                )

    # -- the key form ------------------------------------------------------------------------

    async def key_submitted(
        self,
        *,
        team_id: str,
        user_id: str,
        key: SecretStr,
        origin: ModalOrigin,
        client: AsyncWebClient,
    ) -> None:
        notify: Notifier = (
            ResponseUrlNotifier(self.session, origin.response_url)
            if origin.response_url
            else EventNotifier(client, channel=origin.channel_id, user=user_id, thread_ts=None)
        )

        async def work() -> None:
            try:
                admin = await self.is_admin(client, team_id, user_id)
            except AdminCheckFailed as exc:
                await notify.private(str(exc))
                return
            ctx = self.invocation(team_id, origin.channel_id, user_id, is_admin=admin, name=None)
            command = c.ApiKeySet(key, origin.provider)
            async for reply in self.runtime.dispatcher.run(ctx, command):
                await self._render(reply, notify, client, ("", origin))

        await self.safely(notify, work)

    # -- thread follow-ups and mentions ------------------------------------------------------

    async def message(
        self, event: dict[str, Any], *, team_id: str, client: AsyncWebClient, bot_user_id: str
    ) -> None:
        """A message in a thread that holds a routerbot conversation continues it."""
        if not is_human_message(event, bot_user_id):
            return
        thread_ts, ts = event.get("thread_ts"), str(event.get("ts", ""))
        if not thread_ts or thread_ts == ts:
            return
        channel, user = str(event.get("channel", "")), str(event["user"])
        ctx = self.invocation(team_id, channel, user, name=None)
        conversation = await self.runtime.dispatcher.find_conversation(
            ctx, anchor(channel, thread_ts)
        )
        if conversation is None:
            return
        text = unescape(strip_mention(str(event.get("text", "")), bot_user_id))
        if text and await self.claim(f"message:{team_id}:{channel}:{ts}"):
            await self._follow_up(ctx, conversation, text, client, thread_ts, event)

    async def mention(
        self, event: dict[str, Any], *, team_id: str, client: AsyncWebClient, bot_user_id: str
    ) -> None:
        """``@routerbot question``: a new chat answered in the message's thread (or, in a
        routerbot thread, a follow-up)."""
        if not is_human_message(event, bot_user_id):
            return
        channel, user, ts = str(event.get("channel", "")), str(event["user"]), str(event["ts"])
        thread_ts = event.get("thread_ts")
        root = str(thread_ts or ts)
        ctx = self.invocation(team_id, channel, user, name=None)
        text = unescape(strip_mention(str(event.get("text", "")), bot_user_id))
        if thread_ts and thread_ts != ts:
            conversation = await self.runtime.dispatcher.find_conversation(
                ctx, anchor(channel, root)
            )
            if conversation is not None:
                if text and await self.claim(f"message:{team_id}:{channel}:{ts}"):
                    await self._follow_up(ctx, conversation, text, client, root, event)
                return
        if not await self.claim(f"message:{team_id}:{channel}:{ts}"):
            return
        notify = EventNotifier(client, channel=channel, user=user, thread_ts=root)

        async def work() -> None:
            if not text:
                await notify.private(EMPTY_MENTION)
                return
            try:
                command = c.parse(f"/chat {text}")
            except UserFacingError as exc:
                await notify.private(exc.message)
                return
            files = await self.attachments(event, client, notify)
            if files is None:
                return
            if isinstance(command, c.Chat):
                command = dataclasses.replace(command, attachments=files)
            target = ChatTarget(client, team_id, channel, root, notify, user_id=user)
            replies = self.runtime.dispatcher.run(ctx, command, anchors=[anchor(channel, root)])
            await render_chat(replies, target, self.streaming, self.journal)

        await self.safely(notify, work)

    async def _follow_up(
        self,
        ctx: Invocation,
        conversation: ConversationRef,
        text: str,
        client: AsyncWebClient,
        thread_ts: str,
        event: dict[str, Any],
    ) -> None:
        notify = EventNotifier(
            client, channel=ctx.channel_id, user=ctx.user_id, thread_ts=thread_ts
        )
        target = ChatTarget(
            client, ctx.workspace_id, ctx.channel_id, thread_ts, notify, user_id=ctx.user_id
        )

        async def work() -> None:
            files = await self.attachments(event, client, notify)
            if files is None:
                return
            replies = self.runtime.dispatcher.follow_up(ctx, conversation, text, attachments=files)
            await render_chat(replies, target, self.streaming, self.journal)

        await self.safely(notify, work)
