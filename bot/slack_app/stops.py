"""Slack's Stop button (``agent_session_stopped``): which answers it ends, in any process.

An answer in an assistant thread registers a :class:`Flight` while it runs. A Stop for its
thread sets the flight's event at once when this process streams it. Behind a load balancer the
event may reach another process, so a Stop also raises a signal in the database (one upserted
row, through the store's event port), and the process streaming the answer looks for it
when it has reason to: when the first text arrives (Stop pressed while the model was still
thinking), and when Slack says the stream was ended on its side (``message_not_in_streaming
_state``), which is what Slack does to the streaming messages when Stop is pressed. Neither
costs a database read per streamed chunk.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.deps import utcnow
from bot.core.ports import Store

log = logging.getLogger(__name__)

PLATFORM = "slack"


def _key(team_id: str, channel: str, thread_ts: str) -> str:
    return f"stop:{team_id}:{channel}:{thread_ts}"


@dataclass(eq=False)
class Flight:
    """One answer that a Stop for its thread ends."""

    key: str
    #: Naive UTC: a Stop raised before this moment was for an earlier answer.
    started: datetime
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class StopSignals:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._flights: dict[str, set[Flight]] = {}

    def begin(self, team_id: str, channel: str, thread_ts: str) -> Flight:
        flight = Flight(_key(team_id, channel, thread_ts), utcnow())
        self._flights.setdefault(flight.key, set()).add(flight)
        return flight

    def end(self, flight: Flight) -> None:
        flights = self._flights.get(flight.key)
        if flights is not None:
            flights.discard(flight)
            if not flights:
                del self._flights[flight.key]

    async def stop(self, team_id: str, channel: str, thread_ts: str) -> int:
        """Stop the thread's answers: those here at once, those elsewhere through the
        signal. Returns how many were running here."""
        key = _key(team_id, channel, thread_ts)
        here = list(self._flights.get(key, ()))
        for flight in here:
            flight.stop.set()
        async with self.store.transaction() as tx:
            await tx.events.raise_signal(PLATFORM, key)
        return len(here)

    async def requested(self, flight: Flight) -> bool:
        """Whether a Stop for the flight's thread was raised since it began (anywhere)."""
        if flight.stop.is_set():
            return True
        try:
            async with self.store.transaction() as tx:
                raised = await tx.events.raised_since(PLATFORM, flight.key, flight.started)
        except Exception:
            log.warning("could not look for a Stop in the database", exc_info=True)
            return False
        if raised:
            flight.stop.set()
        return raised
