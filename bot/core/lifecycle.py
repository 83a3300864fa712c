"""The tasks that answer requests, from their start to the process's shutdown, for every
front-end.

A front-end starts its work with :meth:`AnswerTasks.spawn` (or :meth:`AnswerTasks.admit`, one
per event-loop turn), or marks a task its library started with :meth:`AnswerTasks.track`
(discord.py runs each interaction in a task of its own). At shutdown,
:meth:`AnswerTasks.shutdown` lets them finish for up to :data:`SHUTDOWN_GRACE_SECONDS`, then
cancels the rest and waits, for up to :data:`CANCEL_WAIT_SECONDS`, for them to unwind. An answer
cancelled there stays in the journal of answers in flight (:mod:`bot.core.inflight`), for a live
process to finish.

asyncio keeps only weak references to the tasks it runs; these are strong ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine, Iterator
from typing import Any

log = logging.getLogger(__name__)

#: Answers still running at shutdown get this long to finish.
SHUTDOWN_GRACE_SECONDS = 10.0
#: Then those cancelled get this long to unwind (a call in flight lands, ``finally`` runs).
CANCEL_WAIT_SECONDS = 5.0


class AnswerTasks:
    """One front-end's answer tasks; ``name`` ("Slack", "Discord") tells them apart in logs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: deque[tuple[Coroutine[Any, Any, None], str]] = deque()
        self._starter: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run ``coro`` in a task of its own; an exception it raises is logged."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def admit(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Start ``coro`` soon, one per event-loop turn: a burst of requests gets all its acks
        out before the work they started competes with the next ack for the loop."""
        self._queue.append((coro, name))
        if self._starter is None or self._starter.done():
            self._starter = self.spawn(self._start_queued(), name=f"{self.name} admission")

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count the current task among the answers while in this block."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    async def drain(self) -> None:
        """Wait until no task is left, those started meanwhile included."""
        while pending := self._others():
            await asyncio.wait(pending)

    async def shutdown(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Let the tasks finish within ``grace`` seconds; cancel those still running then."""
        try:
            async with asyncio.timeout(grace):
                await self.drain()
        except TimeoutError:
            log.warning(
                "cancelling %d %s task(s) still running at shutdown", len(self._others()), self.name
            )
            await self.cancel_all()

    async def cancel_all(self, wait: float = CANCEL_WAIT_SECONDS) -> None:
        """Drop the work not started yet, cancel the rest and wait up to ``wait`` seconds."""
        while self._queue:
            self._queue.popleft()[0].close()
        tasks = self._others()
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _done, stuck = await asyncio.wait(tasks, timeout=wait)
        if stuck:
            log.warning(
                "%d %s task(s) still running %s s after cancelling", len(stuck), self.name, wait
            )

    def _others(self) -> set[asyncio.Task[Any]]:
        # The task asking (one tracked, shutting the process down itself) cannot wait for itself.
        current = asyncio.current_task()
        return {task for task in self._tasks if task is not current}

    async def _start_queued(self) -> None:
        while self._queue:
            coro, name = self._queue.popleft()
            self.spawn(coro, name=name)
            await asyncio.sleep(0)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # Read here rather than in a wrapping coroutine, which a task cancelled before its
        # first step would leave un-awaited.
        if not task.cancelled() and (error := task.exception()) is not None:
            # Handlers tell the user themselves; this only keeps a bug from vanishing silently.
            log.error("background task %s failed", task.get_name(), exc_info=error)
