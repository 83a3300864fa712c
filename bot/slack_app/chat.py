"""Renders a chat's replies (started, deltas, completed or failed) as a streamed Slack answer.

Which renderer streams it depends on ``SLACK_STREAMING`` and the workspace:
:class:`~bot.slack_app.native_stream.NativeAnswerStream` (``chat.startStream`` …) when the
setting is ``auto`` and Slack has not refused native streaming there lately, else
:class:`~bot.slack_app.streaming.AnswerStream` (``chat.update``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.chat.sources import Source
from bot.core.inflight import INTERRUPTED, AnswerJournal
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    ErrorReply,
    Notice,
    Reply,
    TextReply,
)
from bot.slack_app.errors import error_code
from bot.slack_app.native_stream import APPEND_BURST, APPEND_RATE, NativeAnswerStream
from bot.slack_app.native_support import NativeSupport
from bot.slack_app.notify import Notifier
from bot.slack_app.payloads import anchor
from bot.slack_app.streaming import AnswerStream, UpdateBudget

log = logging.getLogger(__name__)

CANNOT_POST = {
    "not_in_channel": "I am not a member of this channel; invite me with `/invite @routerbot` "
    "and ask again. Nothing was charged.",
    "channel_not_found": "I cannot post in this conversation; use /chat in a channel I am in, "
    "or in a direct message with me. Nothing was charged.",
    "is_archived": "This channel is archived, so I cannot answer here. Nothing was charged.",
}
SLACK_FAILED = "Slack would not show the answer ({error}); please try again."


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """Where an answer goes. ``thread_ts`` None: a new channel message topped by ``header``.
    ``user_id``: who asked (the recipient of a native stream)."""

    client: AsyncWebClient
    team_id: str
    channel: str
    thread_ts: str | None
    notify: Notifier
    header: Callable[[str], str] | None = None
    user_id: str | None = None
    #: The chat's anchors (see ``ProviderService.chat``): the answer's root message is added
    #: once it is posted, and the core writes them with the turn.
    anchors: list[str] | None = None
    #: Called when Slack says a native stream was ended on its side (Stop may have been
    #: pressed; see ``bot.slack_app.stops``).
    on_stream_ended: Callable[[], None] | None = None


class AnswerRenderer(Protocol):
    """What :func:`render_chat` drives: ``AnswerStream`` or ``NativeAnswerStream``."""

    @property
    def root_ts(self) -> str: ...

    @property
    def first_ts(self) -> str: ...

    @property
    def message_ts(self) -> list[str]: ...

    async def open(self) -> str: ...

    def append(self, delta: str) -> None: ...

    async def finish(
        self,
        answer: str,
        footer: str,
        notices: tuple[str, ...] = (),
        sources: Sequence[Source] = (),
    ) -> None: ...

    async def fail(self, sentence: str) -> None: ...

    async def abort(self) -> None: ...


@dataclass(slots=True)
class SlackStreaming:
    """How answers stream (``SLACK_STREAMING``), with the per-workspace budgets for interim
    calls and the memory of where Slack refused native streaming."""

    mode: Literal["auto", "update"] = "auto"
    #: ``chat.update`` is Tier 3 (about 50 a minute per workspace).
    update_budget: UpdateBudget = field(default_factory=UpdateBudget)
    #: ``chat.startStream``/``chat.appendStream`` are Tier 4.
    append_budget: UpdateBudget = field(
        default_factory=lambda: UpdateBudget(rate_per_second=APPEND_RATE, burst=APPEND_BURST)
    )
    native: NativeSupport = field(default_factory=NativeSupport)

    def renderer(self, target: ChatTarget, model: str) -> AnswerRenderer:
        header = target.header(model) if target.header else ""
        if self.mode == "auto" and self.native.available(target.team_id, target.channel):
            return NativeAnswerStream(
                target.client,
                channel=target.channel,
                team_id=target.team_id,
                user_id=target.user_id,
                thread_ts=target.thread_ts,
                header=header,
                budget=self.append_budget,
                update_budget=self.update_budget,
                support=self.native,
                on_ended=target.on_stream_ended,
            )
        return AnswerStream(
            target.client,
            channel=target.channel,
            team_id=target.team_id,
            thread_ts=target.thread_ts,
            header=header,
            budget=self.update_budget,
        )


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    completed: ChatCompleted | None
    stream: AnswerRenderer | None


async def render_chat(
    replies: AsyncIterator[Reply],
    target: ChatTarget,
    streaming: SlackStreaming,
    journal: AnswerJournal | None = None,
) -> ChatOutcome:
    """Consume ``replies`` to the end, streaming the answer; every failure becomes a sentence.

    With a ``journal``, the answer is in it from its first message until it ends (not when
    this task is cancelled at shutdown: then another process finishes the message).
    """
    in_flight: int | None = None
    stream: AnswerRenderer | None = None
    completed: ChatCompleted | None = None
    notices: list[Notice] = []
    try:
        async for reply in replies:
            match reply:
                case Notice():
                    notices.append(reply)  # delivered once the answer is shown
                case ChatStarted(model=model):
                    stream = streaming.renderer(target, model)
                    try:
                        await stream.open()
                    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                        # Posting failed before the provider was called: stop here, unbilled.
                        await replies.aclose()  # type: ignore[attr-defined]
                        await target.notify.private(_cannot_post(exc))
                        return ChatOutcome(None, None)
                    if target.anchors is not None:
                        target.anchors.append(anchor(target.channel, stream.root_ts))
                    if journal is not None:
                        in_flight = journal.begin(_interrupted_target(target, stream, model))
                case ChatDelta(text=text) if stream is not None:
                    stream.append(text)
                case ChatCompleted() if stream is not None:
                    await stream.finish(reply.text, reply.footer, reply.notices, reply.sources)
                    completed = reply
                case ChatFailed(text=text) | ErrorReply(text=text):
                    if stream is not None:
                        await stream.fail(text)
                    else:
                        await target.notify.private(text)
                case TextReply(text=text):
                    await target.notify.private(text)
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        error = error_code(exc)
        log.warning("Slack refused an answer: %s", error)
        if stream is not None:
            await stream.abort()
        await target.notify.private(SLACK_FAILED.format(error=error))
    except Exception:
        if journal is not None and in_flight is not None:
            journal.end(in_flight)  # the caller reports it; no process should finish it later
        raise
    finally:
        await replies.aclose()  # type: ignore[attr-defined]
    if journal is not None and in_flight is not None:
        journal.end(in_flight)
    for notice in notices:
        await deliver_notice(target, notice)
    return ChatOutcome(completed, stream)


async def deliver_notice(target: ChatTarget, notice: Notice) -> None:
    """A budget notice: in the channel, privately to the asker, or as a direct message (a
    ``chat.postMessage`` to the user's id lands in their messages tab with the app). One
    that Slack refuses is logged: the answer it follows is already shown."""
    try:
        if notice.audience == "asker":
            await target.notify.private(notice.text)
        elif notice.audience == "direct" and notice.user_id:
            await target.client.chat_postMessage(
                channel=notice.user_id, text=notice.text, unfurl_links=False
            )
        elif notice.audience == "channel":
            await target.client.chat_postMessage(
                channel=target.channel, text=notice.text, unfurl_links=False
            )
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("Slack refused a budget notice: %s", error_code(exc))


def _interrupted_target(target: ChatTarget, stream: AnswerRenderer, model: str) -> dict[str, Any]:
    """What :func:`finish_interrupted` needs to tell the user, should this process die."""
    where: dict[str, Any] = {"team": target.team_id, "channel": target.channel}
    if isinstance(stream, AnswerStream):
        header = target.header(model) if target.header else ""
        return {**where, "edit": stream.first_ts, "prefix": f"{header}\n\n" if header else ""}
    return {**where, "thread_ts": stream.root_ts}


async def finish_interrupted(client: AsyncWebClient, token: str, target: dict[str, Any]) -> None:
    """Tell the user an answer was cut short by a process that died: the message being edited
    says so (``chat.update``), or, for an answer streamed natively, a reply in its thread."""
    text = f"⚠ {INTERRUPTED}"
    if target.get("edit"):
        await client.chat_update(
            token=token,
            channel=target["channel"],
            ts=target["edit"],
            text=str(target.get("prefix") or "") + text,
        )
    else:
        await client.chat_postMessage(
            token=token, channel=target["channel"], thread_ts=target["thread_ts"], text=text
        )


def _cannot_post(exc: Exception) -> str:
    error = error_code(exc)
    return CANNOT_POST.get(error, SLACK_FAILED.format(error=error) + " Nothing was charged.")
