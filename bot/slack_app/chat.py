"""Renders a chat's replies (started, deltas, completed or failed) as a streamed Slack answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    ErrorReply,
    Reply,
    TextReply,
)
from bot.slack_app.errors import error_code
from bot.slack_app.notify import Notifier
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
    """Where an answer goes. ``thread_ts`` None: a new channel message topped by ``header``."""

    client: AsyncWebClient
    team_id: str
    channel: str
    thread_ts: str | None
    notify: Notifier
    header: Callable[[str], str] | None = None


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    completed: ChatCompleted | None
    stream: AnswerStream | None


async def render_chat(
    replies: AsyncIterator[Reply], target: ChatTarget, budget: UpdateBudget | None
) -> ChatOutcome:
    """Consume ``replies`` to the end, streaming the answer; every failure becomes a sentence."""
    stream: AnswerStream | None = None
    completed: ChatCompleted | None = None
    try:
        async for reply in replies:
            match reply:
                case ChatStarted(model=model):
                    stream = AnswerStream(
                        target.client,
                        channel=target.channel,
                        team_id=target.team_id,
                        thread_ts=target.thread_ts,
                        header=target.header(model) if target.header else "",
                        budget=budget,
                    )
                    try:
                        await stream.open()
                    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                        # Posting failed before the provider was called: stop here, unbilled.
                        await replies.aclose()  # type: ignore[attr-defined]
                        await target.notify.private(_cannot_post(exc))
                        return ChatOutcome(None, None)
                case ChatDelta(text=text) if stream is not None:
                    stream.append(text)
                case ChatCompleted() if stream is not None:
                    await stream.finish(reply.text, reply.footer, reply.notices)
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
    finally:
        await replies.aclose()  # type: ignore[attr-defined]
    return ChatOutcome(completed, stream)


def _cannot_post(exc: Exception) -> str:
    error = error_code(exc)
    return CANNOT_POST.get(error, SLACK_FAILED.format(error=error) + " Nothing was charged.")
