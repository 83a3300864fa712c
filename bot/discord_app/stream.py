"""Streams a growing answer into one or more Discord messages.

Live edits go through the core's live loop (:mod:`bot.core.live`), so reading the provider's
stream never waits on Discord. They are throttled per message (not globally): each message is
written at most once per ``interval``, counting from its creation (the deferred response
counts), so an answer that completes within the first interval costs a single edit. When the
text outgrows 2,000 characters the finished part stays put and the rest continues in a new
message. The final render, when the answer is complete, replaces every part with the whole
answer and its footer; a message edited live keeps its interval before that last edit too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import discord

from bot.core.format import DISCORD_MESSAGE_LIMIT, split_message
from bot.core.live import EDIT_INTERVAL, LiveLoop, Sleep, Spacing

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
    """One answer's messages: ``open``, ``append`` as text arrives, then ``finish`` (or
    ``abort``)."""

    def __init__(
        self,
        sink: MessageSink,
        *,
        interval: float = EDIT_INTERVAL,
        limit: int = DISCORD_MESSAGE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._sink = sink
        self._limit = limit
        self._clock = clock
        self._text = ""
        self._shown: list[str] = []
        #: Keyed by part index.
        self._spacing = Spacing(interval, clock=clock, sleep=sleep)
        self._live = LiveLoop(self, name="discord-live-answer", clock=clock, sleep=sleep)

    async def open(self) -> None:
        """Show that an answer is coming (and learn message 0's id, for anchors)."""
        try:
            content = await self._sink.open()
        except discord.HTTPException as exc:
            log.warning("could not start the answer message: %s", exc)
            return
        if content is not None and not self._shown:
            self._shown.append(content)
            self._spacing.created(0)

    def append(self, delta: str) -> None:
        self._text += delta
        self._live.poke()

    async def finish(self, parts: list[str]) -> None:
        """Stop streaming and show exactly ``parts``."""
        await self._live.stop()
        for index, content in enumerate(parts):
            if not await self._write(index, content, final=True):
                break
        for index in range(len(self._shown) - 1, len(parts) - 1, -1):
            with contextlib.suppress(discord.HTTPException):
                await self._sink.delete(index)
            self._shown.pop()
            self._spacing.forget(index)

    async def abort(self) -> None:
        """Stop the live edits without a final render (the caller is being cancelled); an edit
        in flight still lands."""
        await self._live.stop()

    # -- live edits (the live loop's sink) ------------------------------------------------------

    def due(self) -> float:
        """The earliest slot among the parts that changed."""
        slots = [self._spacing.due(index) for index, _ in self._changed()]
        return min(slots, default=-math.inf)

    async def show(self) -> bool:
        """Write every changed part whose slot has come; True when some still wait for theirs."""
        waiting = False
        for index, content in self._changed():
            if self._spacing.due(index) > self._clock():
                waiting = True
                continue
            if self._live.stopping or not await self._write(index, content):
                return False
        return waiting

    def _changed(self) -> list[tuple[int, str]]:
        return [
            (index, content)
            for index, content in enumerate(self._live_parts())
            if index >= len(self._shown) or self._shown[index] != content
        ]

    def _live_parts(self) -> list[str]:
        if not self._text.strip():
            return []
        parts = split_message(self._text, self._limit)
        if len(parts[-1]) + len(CURSOR) <= self._limit:
            parts[-1] += CURSOR
        return parts

    async def _write(self, index: int, content: str, *, final: bool = False) -> bool:
        """Show ``content`` as part ``index``; False when Discord refused (stop there)."""
        if index < len(self._shown) and self._shown[index] == content:
            return True
        if index > len(self._shown):
            return False
        if final:
            await self._spacing.final(index)
        try:
            await self._sink.write(index, content)
        except discord.HTTPException as exc:
            # A deleted message or an expired token: the answer is still in the database.
            log.warning("could not write answer part %d: %s", index, exc)
            return False
        if index == len(self._shown):
            self._shown.append(content)
            self._spacing.created(index)
        else:
            self._shown[index] = content
            self._spacing.wrote(index)
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
