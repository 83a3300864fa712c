"""Streams a growing answer into one or more Discord messages.

Live edits are throttled per message (not globally): each message is written at most once per
``interval``, counting from its creation (the deferred response counts), by one background
pump, so reading the provider's stream never waits on Discord. An answer that completes within
the first interval therefore costs a single edit. When the text outgrows 2,000 characters the
finished part stays put and the rest continues in a new message. The final render, at once
when the answer is complete, replaces every part with the whole answer and its footer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

import discord

from bot.core.format import DISCORD_MESSAGE_LIMIT, split_message

log = logging.getLogger(__name__)

CURSOR = " ▌"
PLACEHOLDER = "…"
NO_MENTIONS = discord.AllowedMentions.none()


class MessageSink(Protocol):
    """Where the parts of one answer go. Index 0 is the first message."""

    @property
    def message_ids(self) -> list[int]: ...

    async def open(self) -> str | None:
        """Make sure message 0 exists; returns its content if this created it."""

    async def write(self, index: int, content: str) -> None:
        """Create message ``index`` (the next one) or edit it when it exists."""

    async def delete(self, index: int) -> None: ...


class LiveAnswer:
    def __init__(
        self,
        sink: MessageSink,
        *,
        interval: float = 1.0,
        limit: int = DISCORD_MESSAGE_LIMIT,
    ) -> None:
        self._sink = sink
        self._interval = interval
        self._limit = limit
        self._text = ""
        self._shown: list[str] = []
        self._written_at: list[float] = []
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Show that an answer is coming (and learn message 0's id, for anchors)."""
        try:
            content = await self._sink.open()
        except discord.HTTPException as exc:
            log.warning("could not start the answer message: %s", exc)
            return
        if content is not None and not self._shown:
            self._shown.append(content)
            self._written_at.append(time.monotonic())

    def append(self, delta: str) -> None:
        self._text += delta
        self._wake.set()
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name="discord-live-answer")

    async def finish(self, parts: list[str]) -> None:
        """Stop streaming and show exactly ``parts``."""
        if self._pump is not None:
            self._stop.set()
            self._wake.set()
            try:
                await self._pump
            except Exception:
                log.exception("streaming to Discord failed")
        for index, content in enumerate(parts):
            if not await self._write(index, content):
                break
        for index in range(len(self._shown) - 1, len(parts) - 1, -1):
            with contextlib.suppress(discord.HTTPException):
                await self._sink.delete(index)
            self._shown.pop()
            self._written_at.pop()

    async def abort(self) -> None:
        """Stop the pump without a final render (the caller is being cancelled)."""
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        self._pump = None

    def _live_parts(self) -> list[str]:
        if not self._text.strip():
            return []
        parts = split_message(self._text, self._limit)
        if len(parts[-1]) + len(CURSOR) <= self._limit:
            parts[-1] += CURSOR
        return parts

    async def _run(self) -> None:
        while not self._stop.is_set():
            # Cleared before writing, so text that arrives during a write is not missed.
            self._wake.clear()
            delay = await self._write_due()
            if self._stop.is_set():
                return
            if delay is None:
                await self._wake.wait()
            else:
                # New text waits for its message's next slot; only stopping cuts the wait.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def _write_due(self) -> float | None:
        """Write every part whose slot has come; return the wait until the next one."""
        next_wait: float | None = None
        for index, content in enumerate(self._live_parts()):
            if index < len(self._shown) and self._shown[index] == content:
                continue
            wait = self._wait_for(index)
            if wait > 0:
                next_wait = wait if next_wait is None else min(next_wait, wait)
                continue
            if self._stop.is_set() or not await self._write(index, content):
                return None
        return next_wait

    def _wait_for(self, index: int) -> float:
        if index >= len(self._written_at):
            return 0.0
        return self._written_at[index] + self._interval - time.monotonic()

    async def _write(self, index: int, content: str) -> bool:
        """Show ``content`` as part ``index``; False when Discord refused (stop there)."""
        if index < len(self._shown) and self._shown[index] == content:
            return True
        if index > len(self._shown):
            return False
        try:
            await self._sink.write(index, content)
        except discord.HTTPException as exc:
            # A deleted message or an expired token: the answer is still in the database.
            log.warning("could not write answer part %d: %s", index, exc)
            return False
        now = time.monotonic()
        if index == len(self._shown):
            self._shown.append(content)
            self._written_at.append(now)
        else:
            self._shown[index] = content
            self._written_at[index] = now
        return True


class InteractionSink:
    """Part 0 is the deferred original response; later parts are follow-ups."""

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        original_id: int | None = None,
        ephemeral: bool = False,
    ) -> None:
        self._interaction = interaction
        self._ephemeral = ephemeral
        #: Discord returns the deferred message's id with the defer, before any edit.
        self._ids: list[int] = [original_id] if original_id else []
        self._followups: list[discord.WebhookMessage] = []

    @property
    def message_ids(self) -> list[int]:
        return list(self._ids)

    async def open(self) -> str | None:
        # The deferred "thinking…" response is message 0; it was written just now.
        return "" if self._ids else None

    async def write(self, index: int, content: str) -> None:
        if index == 0:
            message = await self._interaction.edit_original_response(
                content=content, allowed_mentions=NO_MENTIONS
            )
            if not self._ids:
                self._ids.append(message.id)
            return
        if index - 1 < len(self._followups):
            await self._followups[index - 1].edit(content=content, allowed_mentions=NO_MENTIONS)
            return
        followup = await self._interaction.followup.send(
            content, ephemeral=self._ephemeral, allowed_mentions=NO_MENTIONS, wait=True
        )
        self._followups.append(followup)
        self._ids.append(followup.id)

    async def delete(self, index: int) -> None:
        if index == 0:
            await self._interaction.delete_original_response()
        else:
            await self._followups.pop(index - 1).delete()
        del self._ids[index]


class ReplySink:
    """Part 0 replies to the user's message; later parts follow it in the same channel."""

    def __init__(self, message: discord.Message) -> None:
        self._message = message
        self._sent: list[discord.Message] = []

    @property
    def message_ids(self) -> list[int]:
        return [m.id for m in self._sent]

    async def open(self) -> str | None:
        # The reply's own "thinking…": the member sees at once that the bot is on it, and
        # the id exists before the answer does, so it is anchored before anyone can reply.
        if self._sent:
            return None
        await self.write(0, PLACEHOLDER)
        return PLACEHOLDER

    async def write(self, index: int, content: str) -> None:
        if index < len(self._sent):
            self._sent[index] = await self._sent[index].edit(
                content=content, allowed_mentions=NO_MENTIONS
            )
            return
        if index == 0:
            sent = await self._message.reply(
                content, allowed_mentions=NO_MENTIONS, mention_author=False
            )
        else:
            sent = await self._message.channel.send(content, allowed_mentions=NO_MENTIONS)
        self._sent.append(sent)

    async def delete(self, index: int) -> None:
        await self._sent.pop(index).delete()
