"""The storage ports a process needs beside the tenants' data: event claims, the journal of
answers in flight, the chats in flight, Slack installations.

Part of :mod:`bot.core.ports` (which re-exports these names; import them from there), kept
apart only so that neither file outgrows one screenful of ideas.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Only bot.core.ports reaches into storage; it re-exports the records.
    from bot.core.ports import AnswerRow, FlightRow, SlackInstallationRecord


class EventRepo(Protocol):
    """Deliveries are claimed with ``Store.claim_event`` (a transaction of its own)."""

    async def prune(self, older_than: datetime) -> int: ...

    async def raise_signal(self, platform: str, key: str) -> None:
        """Leave a signal under ``key`` for other processes (Slack's Stop for an answer another
        process streams); raising it again moves its time to now."""
        ...

    async def raised_since(self, platform: str, key: str, since: datetime) -> bool:
        """Whether the signal ``key`` was raised at or after ``since``."""
        ...


class AnswerRepo(Protocol):
    """The journal of answers in flight (see ``bot.core.inflight``)."""

    async def record(
        self, *, platform: str, owner: str, targets: Sequence[str], now: datetime
    ) -> list[int]: ...

    async def delete(self, ids: Sequence[int]) -> None: ...

    async def heartbeat(self, owner: str, now: datetime) -> None: ...

    async def claim_orphans(
        self, *, platform: str, owner: str, stale_before: datetime, now: datetime
    ) -> list[AnswerRow]: ...


class FlightRepo(Protocol):
    """Chats the provider accepted that are not settled on the ledger yet (see
    ``bot.core.chat.flights``), added with ``Store.put_in_flight``. Owners renew their
    leases; a lapsed lease is claimed by exactly one process."""

    async def release(self, flight_id: int, owner: str) -> bool:
        """Delete the row if ``owner`` still holds it; False when another process took it."""
        ...

    async def renew(self, owner: str, until: datetime, streamed: Sequence[tuple[int, int]]) -> None:
        """Extend these rows of ``owner`` to ``until``, with their streamed characters
        (``(id, chars)`` pairs)."""
        ...

    async def claim(
        self, owner: str, *, now: datetime, until: datetime, limit: int
    ) -> list[FlightRow]:
        """Take over up to ``limit`` rows whose lease lapsed before ``now``, leased to
        ``owner`` until ``until``; each row goes to exactly one caller."""
        ...

    async def postpone(self, flight_id: int, owner: str, until: datetime) -> None:
        """Leave a claimed row for a later attempt, after ``until``."""
        ...


class InstallationRepo(Protocol):
    async def save(self, record: SlackInstallationRecord) -> None: ...

    async def find(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> SlackInstallationRecord | None: ...

    async def delete(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> None: ...

    async def issue_state(self, state: str, expire_at: datetime) -> None: ...

    async def consume_state(self, state: str) -> bool: ...
