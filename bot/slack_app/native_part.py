"""Writes one natively streamed Slack message (a part of an answer), with Slack's failure rules.

A part starts with ``chat.startStream`` (or, when it is whole at once, ``chat.postMessage``),
grows with ``chat.appendStream`` and ends with ``chat.stopStream``; once its stream is gone it is
a plain message, written whole with ``chat.update``. Messages carry ``markdown_text``, as
streams do.

Failures:

* ``chat.startStream`` refused with an error in
  :data:`~bot.slack_app.native_support.NATIVE_UNAVAILABLE`: the refusal is remembered in
  :class:`~bot.slack_app.native_support.NativeSupport`; on the answer's first part
  :class:`Refused` tells the caller to hand the answer to ``chat.update``, later in the answer
  the part becomes a plain, edited message.
* ``message_not_in_streaming_state`` on an append or the stop (the stream ended or expired on
  Slack's side): the message is finished with ``chat.update`` carrying its whole text.
* An append whose outcome is unknown (no answer, or a 5xx): the stream is stopped and the
  message rewritten whole with ``chat.update``, so no text can appear twice. A stop whose
  outcome is unknown is sent once more: ``message_not_in_streaming_state`` then means the first
  one landed, and the message is rewritten whole.
* Anything else (``not_in_channel``, ``is_archived``, …) reaches the caller.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.format import close_open_fence
from bot.core.live import Spacing
from bot.slack_app.errors import error_code
from bot.slack_app.native_support import NATIVE_UNAVAILABLE, NativeSupport

log = logging.getLogger(__name__)

NOT_STREAMING = "message_not_in_streaming_state"
#: What a Slack call fails with: Slack's answer, or no answer.
TRANSPORT = (SlackApiError, aiohttp.ClientError, TimeoutError)


class Refused(Exception):
    """Slack cannot stream the answer's first part here: ``error`` says why."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(slots=True)
class Part:
    """One message of a streamed answer, as far as Slack has taken it."""

    reopen: str
    ts: str = ""
    body: str = ""
    end: str = ""
    #: False: a plain message (the stream ended on Slack's side), edited with chat.update.
    streaming: bool = True
    done: bool = False

    @property
    def text(self) -> str:
        return self.reopen + self.body


class PartWriter:
    """The Slack calls for the parts of one answer; ``spacing`` paces each part's calls."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        team_id: str,
        user_id: str | None,
        support: NativeSupport | None,
        spacing: Spacing,
        on_ended: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.team_id = team_id
        self.user_id = user_id
        self.support = support
        self.spacing = spacing
        #: Told when Slack ended a stream on its side (its TTL, or the user's Stop).
        self.on_ended = on_ended

    async def start(self, part: Part, piece: str, *, thread_ts: str, first: bool) -> None:
        """Post ``part`` as a new stream starting with ``piece``."""
        text = part.reopen + piece
        recipient: dict[str, Any] = {}
        if self.user_id:
            recipient = {"recipient_team_id": self.team_id, "recipient_user_id": self.user_id}
        try:
            response = await self.client.chat_startStream(
                channel=self.channel, thread_ts=thread_ts, markdown_text=text, **recipient
            )
        except SlackApiError as exc:
            error = error_code(exc)
            if error not in NATIVE_UNAVAILABLE:
                raise
            log.info("Slack refused native streaming (%s); answering with chat.update", error)
            if self.support is not None:
                self.support.refuse(self.team_id, self.channel, error)
            if first:
                raise Refused(error) from None
            # Refused in the middle of an answer: this part becomes a plain, edited message.
            response = await self._post_message(text, thread_ts)
            part.streaming = False
        part.ts = str(response["ts"])
        self.spacing.created(part.ts)

    async def post(self, part: Part, text: str, *, thread_ts: str) -> None:
        """Post ``part`` whole (``text`` after its reopened fence), without a stream."""
        response = await self._post_message(part.reopen + text, thread_ts)
        part.ts = str(response["ts"])
        part.streaming = False
        self.spacing.created(part.ts)

    async def extend(self, part: Part, text: str) -> bool:
        """Add interim text to an open part; False when it may or may not have landed (the part
        is then rewritten whole next time)."""
        if not part.streaming:
            await self._edit(part, close_open_fence(part.text + text))
            return True
        try:
            await self.client.chat_appendStream(
                channel=self.channel, ts=part.ts, markdown_text=text
            )
        except TRANSPORT as exc:
            if error_code(exc) == NOT_STREAMING:
                part.streaming = False
                self._ended_by_slack()
                await self._edit(part, close_open_fence(part.text + text))
                return True
            if not unknown_outcome(exc):
                raise
            # Unknown outcome: end the stream; the next edit rewrites the whole text.
            with contextlib.suppress(*TRANSPORT):
                await self.client.chat_stopStream(channel=self.channel, ts=part.ts)
            part.streaming = False
            self.spacing.wrote(part.ts)
            return False
        self.spacing.wrote(part.ts)
        return True

    async def end(self, part: Part, text: str) -> None:
        """The part's last words: ``chat.stopStream`` (or the whole text by ``chat.update``)."""
        await self.spacing.final(part.ts)
        if not part.streaming:
            await self._edit(part, part.text + text)
            return
        for attempt in (1, 2):
            try:
                await self.client.chat_stopStream(
                    channel=self.channel, ts=part.ts, markdown_text=text or None
                )
            except TRANSPORT as exc:
                if error_code(exc) == NOT_STREAMING:
                    part.streaming = False
                    self._ended_by_slack()
                    await self._edit(part, part.text + text)
                    return
                if attempt == 2 or not unknown_outcome(exc):
                    raise
                # Did it land? A second stop tells: if so, it answers NOT_STREAMING.
                await self.spacing.sleep(self.spacing.interval)
                continue
            self.spacing.wrote(part.ts)
            return

    def _ended_by_slack(self) -> None:
        if self.on_ended is not None:
            self.on_ended()

    async def stop_quietly(self, part: Part) -> None:
        """End an open stream as it stands, best-effort (the caller is going away)."""
        if part.streaming:
            with contextlib.suppress(*TRANSPORT):
                await self.client.chat_stopStream(channel=self.channel, ts=part.ts)

    async def _edit(self, part: Part, text: str) -> None:
        await self.client.chat_update(channel=self.channel, ts=part.ts, markdown_text=text)
        self.spacing.wrote(part.ts)

    async def _post_message(self, text: str, thread_ts: str) -> Any:
        return await self.client.chat_postMessage(
            channel=self.channel,
            markdown_text=text,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )


def unknown_outcome(exc: BaseException) -> bool:
    """No answer, or no JSON one (a 5xx): the call may or may not have landed."""
    if not isinstance(exc, SlackApiError):
        return True
    error = error_code(exc)
    return error.startswith("http_") or error == "unknown_error"


def settled(exc: BaseException) -> bool:
    """Slack answered with an error that repeating will not change (the call did not land)."""
    return not unknown_outcome(exc) and error_code(exc) != "ratelimited"
