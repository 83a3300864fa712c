"""The chats this process is running, as leases: on record from the moment the provider
accepts them, so that no billed chat is lost if this process dies.

A chat is begun once admitted (its budget hold is this process's lease from then on) and
accepted when the provider names its generation (``StreamAccepted``). Accepting does not wait
for the database: the row is queued, and one writer task inserts whatever is queued, in one
transaction, at once; concurrent chats share it (a group commit), and the stream is never
held up. Recording the chat (``bot.core.chat.record``) releases the row in the transaction
that writes its usage row, after any write of it in progress has landed; a chat that ends
before its row was written costs no database work at all.

While chats run, :meth:`FlightLog.renew` (called by ``bot.core.chat.keeper`` every renewal
interval) extends their leases and those of their budget holds in one transaction, with the
text streamed so far (what an estimate would start from); an idle process writes nothing.
A process that dies stops renewing: its holds stop counting and its chats are settled by
another process (``bot.core.chat.settle``) once the lease lapses.

What it cannot cover: the moment between the provider's acceptance and the row's commit
(milliseconds; longer when the process or the database is saturated, as the writer then lags
behind the streams), and a provider that names no generation (its chats can only be
estimated).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, auto

from bot.core.deps import Deps
from bot.core.ports import FlightEntry

log = logging.getLogger(__name__)

#: Seconds before a failed write of accepted chats is tried again (the database is down).
WRITE_RETRY_SECONDS = 1.0


class _State(Enum):
    BEGUN = auto()  # admitted, not accepted by the provider yet
    QUEUED = auto()  # accepted, waiting for the writer
    WRITING = auto()  # in the writer's transaction
    WRITTEN = auto()  # its row is committed (``row_id``)
    DROPPED = auto()  # ended before its row was written


@dataclass(eq=False, slots=True)
class Flight:
    """One chat from its admission to its usage row."""

    log: FlightLog
    workspace_id: int
    channel_id: str
    user_id: str
    provider: str
    model: str
    #: The prompt's estimated tokens.
    prompt_tokens: int
    started_at: datetime
    #: Its budget hold, renewed with it (None: no limit applies).
    hold_id: int | None = None
    generation_id: str | None = None
    #: Characters of answer text streamed so far.
    chars: int = 0
    row_id: int | None = None
    #: A row written for an earlier attempt's generation, to delete with the next write.
    stale_row: int | None = None
    #: Accepted again (a retry) while its row was being written.
    renamed: bool = False
    state: _State = _State.BEGUN
    written: asyncio.Future[None] | None = field(default=None, repr=False)

    def entry(self, *, lease_until: datetime, usage_id: int | None = None) -> FlightEntry:
        return FlightEntry(
            workspace_id=self.workspace_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            provider=self.provider,
            model=self.model,
            generation_id=self.generation_id,
            owner=self.log.owner,
            lease_until=lease_until,
            started_at=self.started_at,
            prompt_tokens=self.prompt_tokens,
            streamed_chars=self.chars,
            usage_id=usage_id,
        )


class FlightLog:
    """This process's chats in flight and the leases it holds (see the module docstring)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.owner = deps.owner
        self.lease = timedelta(seconds=deps.settings.routerbot_lease_seconds)
        self._live: set[Flight] = set()
        self._queued: list[Flight] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def live(self) -> int:
        return len(self._live)

    def is_running(self, row_id: int) -> bool:
        """Whether the row is of a chat this process is still running (its lease lapsed only
        because renewals could not reach the database)."""
        return any(f.row_id == row_id for f in self._live)

    def begin(
        self,
        *,
        workspace_id: int,
        channel_id: str,
        user_id: str,
        provider: str,
        model: str,
        prompt_tokens: int,
        hold_id: int | None,
    ) -> Flight:
        flight = Flight(
            self,
            workspace_id,
            channel_id,
            user_id,
            provider,
            model,
            prompt_tokens,
            started_at=self.deps.clock(),
            hold_id=hold_id,
        )
        self._live.add(flight)
        return flight

    def accept(self, flight: Flight, generation_id: str | None) -> None:
        """The provider accepted the chat as ``generation_id``: put it on record now. A retry
        names a new generation, whose row replaces the earlier one."""
        if flight.state is _State.DROPPED:
            return
        flight.generation_id = generation_id
        if flight.state is _State.QUEUED:
            return  # the writer takes the newest id
        if flight.state is _State.WRITTEN:
            flight.stale_row, flight.row_id = flight.row_id, None
        elif flight.state is _State.WRITING:
            flight.renamed = True  # lands with the old id; the writer queues it again
            return
        flight.state = _State.QUEUED
        self._queued.append(flight)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="chats in flight")

    def closing(self, flight: Flight) -> None:
        """The chat's usage row is about to be written: a row of it not yet being written is
        not written at all (no work for a chat shorter than the writer's turn)."""
        if flight.state in (_State.BEGUN, _State.QUEUED):
            flight.state = _State.DROPPED

    async def settled(self, flight: Flight) -> int | None:
        """Before the chat's usage row is written: wait for a write of its row in progress
        (or skip one not begun). Returns the row to release with the usage row, if any."""
        while flight.state is _State.WRITING and flight.written is not None:
            # Shielded: a chat cancelled while recording still records once the write lands.
            await asyncio.shield(flight.written)
        if flight.state is _State.WRITTEN:
            return flight.row_id
        flight.state = _State.DROPPED
        stale, flight.stale_row = flight.stale_row, None
        return stale

    def end(self, flight: Flight) -> None:
        """The chat is over (recorded, or its recording failed: then its row, if written,
        lapses and is settled like a dead process's)."""
        self._live.discard(flight)
        if flight.state in (_State.BEGUN, _State.QUEUED):
            flight.state = _State.DROPPED

    # -- the writer ----------------------------------------------------------------------------

    async def _write(self) -> None:
        while self._queued:
            batch = [f for f in self._queued if f.state is _State.QUEUED]
            self._queued = []
            if not batch:
                continue
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for flight in batch:
                flight.state, flight.written = _State.WRITING, done
            lease_until = self.deps.clock() + self.lease
            try:
                ids = await self.deps.store.put_in_flight(
                    [f.entry(lease_until=lease_until) for f in batch],
                    release=[f.stale_row for f in batch if f.stale_row is not None],
                    owner=self.owner,
                )
            except Exception:
                log.warning(
                    "could not put %d accepted chat(s) on record", len(batch), exc_info=True
                )
                for flight in batch:
                    flight.state = _State.QUEUED
                self._queued[:0] = batch
                done.set_result(None)
                await asyncio.sleep(WRITE_RETRY_SECONDS)
                continue
            for flight, row_id in zip(batch, ids, strict=True):
                flight.row_id, flight.stale_row, flight.state = row_id, None, _State.WRITTEN
                if flight.renamed:
                    flight.renamed = False
                    self.accept(flight, flight.generation_id)
            done.set_result(None)

    # -- leases --------------------------------------------------------------------------------

    async def renew(self) -> None:
        """Extend this process's leases while it has chats running: their budget holds and
        their rows, with the text each has streamed. One transaction; none when idle."""
        if not self._live:
            return
        until = self.deps.clock() + self.lease
        holds = [f.hold_id for f in self._live if f.hold_id is not None]
        streamed = [
            (f.row_id, f.chars)
            for f in self._live
            if f.state is _State.WRITTEN and f.row_id is not None
        ]
        if not (holds or streamed):
            return
        async with self.deps.store.transaction() as tx:
            # By id: a hold whose release failed is no chat's, and lapses.
            await tx.budgets.renew_holds(self.owner, holds, until)
            await tx.flights.renew(self.owner, until, streamed)

    async def drain(self) -> None:
        """Until what is queued now is written (or has failed to be)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def aclose(self) -> None:
        """Let the writer finish what is queued (a shutdown after every chat has ended leaves
        nothing)."""
        try:
            async with asyncio.timeout(5):
                await self.drain()
        except TimeoutError:
            if self._writer is not None:
                self._writer.cancel()
