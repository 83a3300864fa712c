"""Work that runs after the ack: tracked tasks, so shutdown (and tests) can wait for them."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskGroup:
    """A set of background tasks with strong references (asyncio keeps only weak ones)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: deque[tuple[Coroutine[Any, Any, None], str]] = deque()
        self._starter: asyncio.Task[None] | None = None

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def admit(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Start ``coro`` soon, one per event-loop turn: a burst of requests gets all its acks
        out before the work they started competes with the next ack for the loop."""
        self._queue.append((coro, name))
        if self._starter is None or self._starter.done():
            self._starter = self.spawn(self._start_queued(), name="slack-admission")

    async def _start_queued(self) -> None:
        while self._queue:
            coro, name = self._queue.popleft()
            self.spawn(coro, name=name)
            await asyncio.sleep(0)

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            # Handlers tell the user themselves; this only keeps a bug from vanishing silently.
            log.exception("background task %s failed", name)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until no task is left, new ones spawned meanwhile included (callers bound it
        with ``asyncio.timeout``)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def cancel_all(self) -> None:
        while self._queue:
            self._queue.popleft()[0].close()
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
