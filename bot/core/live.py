"""The throttled live edit of a streaming answer, written once for every front-end.

Reading the provider's stream never waits on the platform: the renderer keeps the text and
pokes the loop (:meth:`LiveLoop.poke`), whose one background task asks the renderer (its
:class:`LiveSink`) to show what has arrived once that is due. What it guarantees:

* **at most one call per interval per message**: :class:`Spacing` remembers when each message
  was created or last written; a sink's ``due`` answers from it (and from its own back-offs,
  such as a spent rate budget), and the loop calls ``show`` no sooner;
* **no text lost while a call is in flight**: "nothing new" is marked before ``show`` runs, so
  text arriving meanwhile starts another round;
* **a final call, always last**: :meth:`LiveLoop.stop` ends the interim updates without
  cancelling a call in flight (not even when the caller itself is cancelled): that call lands,
  no other starts, and the renderer's final call, which carries everything, comes after it.
  The final call keeps the spacing after an edit (:meth:`Spacing.final`);
* **interim calls are best-effort**: a sink handles its platform's errors itself; anything else
  it raises is logged and ends the interim updates only, never the answer.

Time comes from an injected ``clock`` and ``sleep``, so the cadence is tested without real
time. Only the platforms' facts stay in the front-ends: what a message is, how it is written,
and their rate budgets.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol

log = logging.getLogger(__name__)

#: Seconds between two writes of one message: Slack's ``chat.update`` and Discord's edits both
#: allow about one a second per message.
EDIT_INTERVAL = 1.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class LiveSink(Protocol):
    """What a renderer provides to :class:`LiveLoop`."""

    def due(self) -> float:
        """The ``clock`` time at which the next interim call may start (at or before now: at
        once). Asked again every round, after any wait."""
        ...

    async def show(self) -> bool:
        """Send what has arrived and is due (best-effort: the final call carries everything);
        True when something was left for a later round (a message not due yet, a spent budget,
        a call to try again)."""
        ...


class LiveLoop:
    """One answer's interim updates: one background task, started by the first ``poke``."""

    def __init__(
        self,
        sink: LiveSink,
        *,
        name: str,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._sink = sink
        self._name = name
        self._clock = clock
        self._sleep = sleep
        self._dirty = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """``stop`` was called: a sink making several calls in one ``show`` stops between them."""
        return self._closing.is_set()

    def poke(self) -> None:
        """Text arrived (or anything else worth showing); ignored once stopping."""
        if self._closing.is_set():
            return
        self._dirty.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """End the interim updates; returns once no call is in flight and none will start.

        The task is shielded: cancelling the caller (a shutdown) leaves a call in flight to
        land rather than cutting it off half-made on the platform's side."""
        self._closing.set()
        self._dirty.set()  # wakes a loop waiting for text
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while await self._round():
                pass
        except Exception:
            # Never out of stop(): the caller's final call must still happen.
            log.exception("live update %s failed; the final call shows the answer", self._name)

    async def _round(self) -> bool:
        """One interim update; False once stopping."""
        await self._dirty.wait()
        if self._closing.is_set():
            return False
        await self._until(self._sink.due())
        if self._closing.is_set():
            return False  # the final call carries what this round would have sent
        # Marked before the call, so text arriving while it is in flight is not missed.
        self._dirty.clear()
        if await self._sink.show():
            self._dirty.set()
        return True

    async def _until(self, due: float) -> None:
        """Sleep until ``due``; stopping cuts the wait short, new text does not."""
        delay = due - self._clock()
        if delay <= 0:
            # Still one turn of the event loop (a set Event does not yield): a sink asking for
            # round after round must not starve the task reading the provider's stream.
            await asyncio.sleep(0)
            return
        sleeping = asyncio.ensure_future(self._sleep(delay))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((sleeping, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            closing.cancel()


class Spacing:
    """When each message of one answer may next be written: once per ``interval``, counted from
    its creation or its last write. Keys are whatever names a message (a Slack ``ts``, a part's
    index)."""

    def __init__(
        self,
        interval: float = EDIT_INTERVAL,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._last: dict[Hashable, float] = {}
        self._written: set[Hashable] = set()

    def created(self, key: Hashable, at: float | None = None) -> None:
        """Message ``key`` appeared (at ``at`` on the clock, else now)."""
        self._last[key] = self.clock() if at is None else at
        self._written.discard(key)

    def wrote(self, key: Hashable) -> None:
        """A call changed message ``key`` just now."""
        self._last[key] = self.clock()
        self._written.add(key)

    def forget(self, key: Hashable) -> None:
        """Message ``key`` is gone (deleted)."""
        self._last.pop(key, None)
        self._written.discard(key)

    def due(self, key: Hashable) -> float:
        """When the next interim call to ``key`` may start; a message not yet seen at once."""
        last = self._last.get(key)
        return -math.inf if last is None else last + self.interval

    async def final(self, key: Hashable) -> None:
        """Wait before the final call to ``key``. It keeps the spacing after a write, not after
        the creation: an answer complete within its first interval is shown at once."""
        if key not in self._written:
            return
        delay = self._last[key] + self.interval - self.clock()
        if delay > 0:
            await self.sleep(delay)
