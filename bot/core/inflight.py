"""The journal of answers in flight: what this process is streaming, so that if it dies another
process can tell the users their answers were cut short instead of leaving a message that
says "…" forever.

A front-end calls :meth:`AnswerJournal.begin` once an answer's first message is posted (with a
JSON-able ``target``: where the message is and how to finish it) and :meth:`AnswerJournal.end`
when the answer is complete or has failed with its own sentence. Neither touches the
database: every ``interval`` seconds one transaction records the answers begun since, deletes
the ended ones and renews this process's heartbeat. An answer shorter than ``interval`` is
never written at all, so the journal costs no database work per chat. The same loop sweeps:
rows whose owner's heartbeat is older than ``stale`` seconds belong to a process that died,
and are claimed (by exactly one live process) and handed to ``finish``.

What it cannot cover: answers begun less than ``interval`` before the process died (never
written), and the answer text shown so far (the journal does not keep it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from bot.core.deps import utcnow
from bot.core.ports import Store

log = logging.getLogger(__name__)

#: Seconds between the journal's writes (and sweeps).
HEARTBEAT_SECONDS = 5.0
#: A heartbeat older than this means the owner is gone.
STALE_SECONDS = 30.0
#: What a message cut short by a dead process says in the end (after "⚠ "), on every platform.
INTERRUPTED = "This answer was cut short: routerbot restarted before it finished. Please ask again."

Finish = Callable[[dict[str, Any]], Awaitable[None]]


class AnswerJournal:
    def __init__(
        self,
        store: Store,
        *,
        platform: str,
        finish: Finish,
        interval: float = HEARTBEAT_SECONDS,
        stale: float = STALE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.platform = platform
        self.finish = finish
        self.interval = interval
        self.stale = stale
        self.clock = clock
        #: This process, as the ``owner`` of its rows.
        self.owner = uuid.uuid4().hex
        self._tokens = itertools.count(1)
        self._unwritten: dict[int, str] = {}
        self._written: dict[int, int] = {}
        self._writing: set[int] = set()
        self._ended_while_writing: set[int] = set()
        self._to_delete: list[int] = []
        self._task: asyncio.Task[None] | None = None

    # -- what front-ends call -------------------------------------------------------------------

    def begin(self, target: dict[str, Any]) -> int:
        token = next(self._tokens)
        self._unwritten[token] = json.dumps(target, separators=(",", ":"))
        return token

    def end(self, token: int) -> None:
        if self._unwritten.pop(token, None) is not None:
            return
        if token in self._writing:
            self._ended_while_writing.add(token)
            return
        row_id = self._written.pop(token, None)
        if row_id is not None:
            self._to_delete.append(row_id)

    @property
    def in_flight(self) -> int:
        return len(self._unwritten) + len(self._written) + len(self._writing)

    # -- the loop -------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.platform} answer journal")

    async def aclose(self) -> None:
        """Stop the loop and write what is left: ended answers are deleted, answers still in
        flight (cancelled at shutdown) stay, for a live process to finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.warning("could not write the answer journal at shutdown", exc_info=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.flush()
                await self.sweep()
            except Exception:
                log.warning("the answer journal could not reach the database", exc_info=True)
            await asyncio.sleep(self.interval)

    async def flush(self) -> None:
        """Record begun answers, delete ended ones, renew the heartbeat: one transaction, none
        when there is nothing to say."""
        if not (self._unwritten or self._to_delete or self._written):
            return
        batch = list(self._unwritten.items())
        self._unwritten.clear()
        self._writing.update(token for token, _ in batch)
        deleting, self._to_delete = self._to_delete, []
        now = self.clock()
        try:
            async with self.store.transaction() as tx:
                ids = await tx.answers.record(
                    platform=self.platform,
                    owner=self.owner,
                    targets=[target for _, target in batch],
                    now=now,
                )
                await tx.answers.delete(deleting)
                await tx.answers.heartbeat(self.owner, now)
        except BaseException:
            # Try again next time, unless the answer ended meanwhile.
            for token, target in batch:
                if token not in self._ended_while_writing:
                    self._unwritten[token] = target
            self._to_delete.extend(deleting)
            self._writing.difference_update(token for token, _ in batch)
            self._ended_while_writing.difference_update(token for token, _ in batch)
            raise
        for (token, _), row_id in zip(batch, ids, strict=True):
            self._writing.discard(token)
            if token in self._ended_while_writing:
                self._ended_while_writing.discard(token)
                self._to_delete.append(row_id)
            else:
                self._written[token] = row_id

    async def sweep(self) -> int:
        """Finish the answers of processes that died; returns how many."""
        now = self.clock()
        async with self.store.transaction() as tx:
            claimed = await tx.answers.claim_orphans(
                platform=self.platform,
                owner=self.owner,
                stale_before=now - timedelta(seconds=self.stale),
                now=now,
            )
        for row_id, target in ((row.id, row.target) for row in claimed):
            try:
                await self.finish(json.loads(target))
            except Exception:
                log.warning("could not finish an interrupted answer", exc_info=True)
            async with self.store.transaction() as tx:
                await tx.answers.delete([row_id])
        if claimed:
            log.info("finished %d answer(s) interrupted by another process", len(claimed))
        return len(claimed)
