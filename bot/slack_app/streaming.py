"""Streams one answer into Slack messages with ``chat.update``, within Slack's limits.

The provider stream is never slowed down by Slack: deltas go into a buffer, and the core's live
loop (:mod:`bot.core.live`) edits the message with whatever has arrived, at most once per
``interval`` per message (the first edit no sooner than ``interval`` after the post). Interim
edits are best-effort and also share a per-workspace budget (``chat.update`` is Tier 3, about
50 a minute per workspace); the final edit always happens, and a 429 there is retried by the
client after ``Retry-After``. Answers longer than a message continue in thread replies; the
final text is split by :func:`bot.core.format.split_with_footer`, so code fences survive and the
footer ends the last part.

This is the ``SLACK_STREAMING=update`` path, and the fall-back of
:mod:`bot.slack_app.native_stream` where Slack refuses native streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.chat.sources import Source
from bot.core.format import (
    SLACK_MESSAGE_LIMIT,
    close_open_fence,
    split_message,
    split_with_footer,
)
from bot.core.live import EDIT_INTERVAL, LiveLoop, Sleep, Spacing
from bot.slack_app.errors import error_code
from bot.slack_app.text import escape, source_links

log = logging.getLogger(__name__)

THINKING = "_…_"
CURSOR = " ▍"
EMPTY_ANSWER = "_(The model returned an empty answer.)_"
#: Room kept free in interim parts for the cursor and a temporary closing fence.
_INTERIM_RESERVE = 12


class UpdateBudget:
    """A token bucket per workspace for interim edits (final edits never wait on it)."""

    def __init__(
        self,
        rate_per_second: float = 50 / 60,
        burst: float = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, team_id: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.get(team_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[team_id] = (tokens, now)
            return False
        self._buckets[team_id] = (tokens - 1, now)
        return True


@dataclass(slots=True)
class _Message:
    ts: str
    text: str


class AnswerStream:
    """One answer: ``open`` posts the first message, ``append`` feeds text, then ``finish`` or
    ``fail`` writes the final state. ``header`` (the question) tops the first message."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        team_id: str,
        thread_ts: str | None = None,
        header: str = "",
        budget: UpdateBudget | None = None,
        interval: float = EDIT_INTERVAL,
        limit: int = SLACK_MESSAGE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.channel = channel
        self.team_id = team_id
        self.thread_ts = thread_ts
        self.header = header
        self.budget = budget
        self.interval = interval
        self.clock = clock
        self._prefix = f"{header}\n\n" if header else ""
        self._limit = limit - len(self._prefix)
        self._chunks: list[str] = []
        self._messages: list[_Message] = []
        self._spacing = Spacing(interval, clock=clock, sleep=sleep)
        self._live = LiveLoop(self, name="slack-stream-flush", clock=clock, sleep=sleep)
        self._next_try = 0.0

    @property
    def root_ts(self) -> str:
        """The message whose thread holds the continuation parts (and the follow-ups)."""
        return self.thread_ts or self._messages[0].ts

    @property
    def first_ts(self) -> str:
        return self._messages[0].ts

    @property
    def message_ts(self) -> list[str]:
        return [m.ts for m in self._messages]

    async def open(self, placeholder: str = THINKING) -> str:
        """Post the first message; raises ``SlackApiError`` when Slack refuses it."""
        await self._post(self._prefix + placeholder)
        return self._messages[0].ts

    def adopt(self, ts: str, text: str, posted_at: float) -> None:
        """Continue in a message already posted (showing ``text``) instead of posting one: the
        native stream hands its question message over when the workspace cannot stream."""
        self._messages.append(_Message(ts, text))
        self._spacing.created(ts, at=posted_at)

    def append(self, delta: str) -> None:
        if delta:
            self._chunks.append(delta)
            self._live.poke()

    async def finish(
        self,
        answer: str,
        footer: str,
        notices: tuple[str, ...] = (),
        sources: Sequence[Source] = (),
    ) -> None:
        """The whole answer, then the notices, the sources (as links) and the footer."""
        body = escape(answer) if answer.strip() else EMPTY_ANSWER
        if notices:
            body = close_open_fence(body) + "\n\n" + "\n".join(escape(n) for n in notices)
        if sources:
            links = source_links(sources)
            body = close_open_fence(body) + "\n\n" + links
        await self._close(split_with_footer(body, escape(footer), self._limit))

    async def fail(self, sentence: str) -> None:
        """The chat failed: the partial text (if any) stays, followed by the reason."""
        partial = escape("".join(self._chunks))
        body = f"{close_open_fence(partial)}\n\n" if partial.strip() else ""
        await self._close(split_message(f"{body}⚠ {escape(sentence)}", self._limit))

    async def abort(self) -> None:
        """Stop the interim edits without a final edit (the caller is going away)."""
        await self._live.stop()

    # -- interim edits (the live loop's sink) --------------------------------------------------

    def due(self) -> float:
        if not self._messages:
            return self._next_try
        return max(self._spacing.due(self._messages[-1].ts), self._next_try)

    async def show(self) -> bool:
        if self.budget is not None and not self.budget.allow(self.team_id):
            self._next_try = self.clock() + self.interval
            return True
        try:
            await self._apply(self._interim_parts(), final=False)
        except Exception as exc:
            # Interim edits are best-effort; the final edit will carry everything.
            log.warning("interim Slack edit failed: %s", error_code(exc))
            self._next_try = self.clock() + self.interval
        return False

    # -- internals ----------------------------------------------------------------------------

    async def _close(self, parts: list[str]) -> None:
        await self._live.stop()
        await self._apply(parts, final=True)
        # A streamed answer may have spilled into more parts than the final split needs.
        for extra in self._messages[len(parts) :]:
            with contextlib.suppress(SlackApiError):
                await self.client.chat_delete(channel=self.channel, ts=extra.ts)
            self._spacing.forget(extra.ts)
        del self._messages[len(parts) :]

    def _interim_parts(self) -> list[str]:
        body = escape("".join(self._chunks))
        parts = split_message(body, self._limit - _INTERIM_RESERVE) if body else [THINKING]
        last = parts[-1] + CURSOR
        # A code block still being written is closed for display, with the cursor inside it.
        parts[-1] = close_open_fence(last) if close_open_fence(parts[-1]) != parts[-1] else last
        return parts

    async def _apply(self, parts: list[str], *, final: bool) -> None:
        for index, part in enumerate(parts):
            text = self._prefix + part if index == 0 else part
            if index >= len(self._messages):
                await self._post(text)
                continue
            message = self._messages[index]
            if message.text == text:
                continue
            if final:
                await self._spacing.final(message.ts)
            await self.client.chat_update(channel=self.channel, ts=message.ts, text=text)
            message.text = text
            self._spacing.wrote(message.ts)

    async def _post(self, text: str) -> None:
        thread_ts = self.thread_ts if not self._messages else self.root_ts
        response = await self.client.chat_postMessage(
            channel=self.channel,
            text=text,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
        ts = str(response["ts"])
        self._messages.append(_Message(ts, text))
        self._spacing.created(ts)
