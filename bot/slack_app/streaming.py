"""Streams one answer into Slack messages with ``chat.update``, within Slack's limits.

The provider stream is never slowed down by Slack: deltas go into a buffer, and a separate
flusher task edits the message with whatever has arrived, at most once per ``interval`` per
message (the first edit no sooner than ``interval`` after the post). Interim edits are
best-effort and also share a per-workspace budget (``chat.update`` is Tier 3, about 50 a minute
per workspace); the final edit always happens, and a 429 there is retried by the client after
``Retry-After``. Answers longer than a message continue in thread replies; the final text is
split by :func:`bot.core.format.split_with_footer`, so code fences survive and the footer ends
the last part.

This is the ``SLACK_STREAMING=update`` path, and the fall-back of
:mod:`bot.slack_app.native_stream` where Slack refuses native streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.format import (
    SLACK_MESSAGE_LIMIT,
    close_open_fence,
    split_message,
    split_with_footer,
)
from bot.slack_app.errors import error_code
from bot.slack_app.text import escape

log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.0
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


class Flusher:
    """The background task both Slack renderers send interim text with.

    ``poke`` says text arrived; the task's loop waits in :meth:`next_round` for text and then
    until its next call is due, returning False once the answer closes. ``stop`` closes it and
    waits: a call in flight must land before the final one, never after, so it is not
    cancelled.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._dirty = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        self._task = asyncio.create_task(loop, name=name)

    def poke(self) -> None:
        self._dirty.set()

    def settle(self) -> None:
        """Everything there is has been sent (or is about to be): wait for new text."""
        self._dirty.clear()

    async def next_round(self, due: Callable[[], float]) -> bool:
        """Wait for text, then until ``due()`` (a ``clock`` time); False once closed."""
        await self._dirty.wait()
        if self._closing.is_set():
            return False
        wait = due() - self.clock()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), wait)
        return not self._closing.is_set()

    async def stop(self) -> None:
        self._closing.set()
        self._dirty.set()  # wakes a loop still waiting for its first text
        if self._task is not None:
            await self._task
            self._task = None


@dataclass(slots=True)
class _Message:
    ts: str
    text: str
    touched_at: float
    updated_at: float | None = None


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
        self._flusher = Flusher(clock)
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
        self._flusher.start(self._flush_loop(), "slack-stream-flush")
        return self._messages[0].ts

    def adopt(self, ts: str, text: str, posted_at: float) -> None:
        """Continue in a message already posted (showing ``text``) instead of posting one: the
        native stream hands its question message over when the workspace cannot stream."""
        self._messages.append(_Message(ts, text, posted_at))
        self._flusher.start(self._flush_loop(), "slack-stream-flush")

    def append(self, delta: str) -> None:
        if delta:
            self._chunks.append(delta)
            self._flusher.poke()

    async def finish(self, answer: str, footer: str, notices: tuple[str, ...] = ()) -> None:
        body = escape(answer) if answer.strip() else EMPTY_ANSWER
        if notices:
            body = close_open_fence(body) + "\n\n" + "\n".join(escape(n) for n in notices)
        await self._close(split_with_footer(body, escape(footer), self._limit))

    async def fail(self, sentence: str) -> None:
        """The chat failed: the partial text (if any) stays, followed by the reason."""
        partial = escape("".join(self._chunks))
        body = f"{close_open_fence(partial)}\n\n" if partial.strip() else ""
        await self._close(split_message(f"{body}⚠ {escape(sentence)}", self._limit))

    async def abort(self) -> None:
        """Stop the flusher without a final edit (the caller is going away)."""
        await self._flusher.stop()

    # -- internals ----------------------------------------------------------------------------

    async def _close(self, parts: list[str]) -> None:
        await self._flusher.stop()
        await self._apply(parts, final=True)
        # A streamed answer may have spilled into more parts than the final split needs.
        for extra in self._messages[len(parts) :]:
            with contextlib.suppress(SlackApiError):
                await self.client.chat_delete(channel=self.channel, ts=extra.ts)
        del self._messages[len(parts) :]

    def _due(self) -> float:
        return max(self._messages[-1].touched_at + self.interval, self._next_try)

    async def _flush_loop(self) -> None:
        while await self._flusher.next_round(self._due):
            if self.budget is not None and not self.budget.allow(self.team_id):
                self._next_try = self.clock() + self.interval
                continue
            self._flusher.settle()
            try:
                await self._apply(self._interim_parts(), final=False)
            except Exception as exc:
                # Interim edits are best-effort; the final edit will carry everything.
                log.warning("interim Slack edit failed: %s", error_code(exc))
                self._next_try = self.clock() + self.interval

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
            if final and message.updated_at is not None:
                # The final edit keeps the once-a-second spacing too.
                delay = message.updated_at + self.interval - self.clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.client.chat_update(channel=self.channel, ts=message.ts, text=text)
            message.text = text
            message.touched_at = message.updated_at = self.clock()

    async def _post(self, text: str) -> None:
        thread_ts = self.thread_ts if not self._messages else self.root_ts
        response = await self.client.chat_postMessage(
            channel=self.channel,
            text=text,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
        self._messages.append(_Message(str(response["ts"]), text, self.clock()))
