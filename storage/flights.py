"""Chats in flight (:class:`storage.models.ChatInFlight`): written in batches when the provider
accepts them, kept alive by their owner's lease, released with the chat's usage row, and
claimed for settling once a lease has lapsed.

Releasing and claiming are conditional on the owner (and, for a claim, on the lease that was
read), so a chat is settled by exactly one process: the one streaming it, or, once its lease
has lapsed, the one whose claim won.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import ChatInFlight
from storage.records import FlightEntry

__all__ = [
    "FLIGHT_COLUMNS",
    "RELEASE",
    "claim_flights",
    "flight_values",
    "postpone_flight",
    "release_flight",
    "renew_flights",
]

_flights: Table = ChatInFlight.__table__  # type: ignore[attr-defined]  # set by SQLModel


#: The columns a new row in flight is written with (every one but its id).
FLIGHT_COLUMNS = (
    "workspace_id",
    "channel_id",
    "user_id",
    "provider",
    "model",
    "generation_id",
    "owner",
    "lease_until",
    "started_at",
    "prompt_tokens",
    "streamed_chars",
    "usage_id",
)


def flight_values(entry: FlightEntry) -> dict[str, Any]:
    """The columns of a new row in flight."""
    return {
        "workspace_id": entry.workspace_id,
        "channel_id": entry.channel_id,
        "user_id": entry.user_id,
        "provider": entry.provider,
        "model": entry.model,
        "generation_id": entry.generation_id,
        "owner": entry.owner,
        "lease_until": entry.lease_until,
        "started_at": entry.started_at,
        "prompt_tokens": entry.prompt_tokens,
        "streamed_chars": entry.streamed_chars,
        "usage_id": entry.usage_id,
    }


#: Delete a row if its owner still holds it (``flight_id``, ``owner``).
RELEASE = delete(_flights).where(
    _flights.c.id == bindparam("flight_id"), _flights.c.owner == bindparam("owner")
)


async def release_flight(session: AsyncSession, *, flight_id: int, owner: str) -> bool:
    """Delete the row if ``owner`` still holds it: True when this caller settles the chat."""
    result = await session.execute(RELEASE, {"flight_id": flight_id, "owner": owner})
    return _rowcount(result) == 1


async def renew_flights(
    session: AsyncSession,
    *,
    owner: str,
    until: datetime,
    streamed: Sequence[tuple[int, int]],
) -> None:
    """Extend the lease of these rows of ``owner`` and note how much text each has streamed
    (``(id, chars)`` pairs); one statement, executed for all."""
    if not streamed:
        return
    stmt = (
        update(_flights)
        .where(_flights.c.id == bindparam("fid"), _flights.c.owner == bindparam("fowner"))
        .values(lease_until=bindparam("until"), streamed_chars=bindparam("chars"))
    )
    await session.execute(
        stmt,
        [{"fid": fid, "fowner": owner, "until": until, "chars": chars} for fid, chars in streamed],
    )


async def claim_flights(
    session: AsyncSession, *, owner: str, now: datetime, until: datetime, limit: int = 20
) -> list[ChatInFlight]:
    """Take over rows whose lease lapsed before ``now``, leased to ``owner`` until ``until``;
    each row is claimed by exactly one caller."""
    candidates = (
        await session.execute(
            select(ChatInFlight)
            .where(col(ChatInFlight.lease_until) < now)
            .order_by(col(ChatInFlight.lease_until), col(ChatInFlight.id))
            .limit(limit)
        )
    ).scalars()
    claimed: list[ChatInFlight] = []
    for row in list(candidates):
        result = await session.execute(
            update(ChatInFlight)
            .where(
                col(ChatInFlight.id) == row.id,
                col(ChatInFlight.owner) == row.owner,
                col(ChatInFlight.lease_until) == row.lease_until,
            )
            .values(owner=owner, lease_until=until)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) == 1:
            claimed.append(row)
    return claimed


async def postpone_flight(
    session: AsyncSession, *, flight_id: int, owner: str, until: datetime
) -> None:
    """Leave a claimed row to be settled again after ``until`` (the provider could not be
    asked now)."""
    await session.execute(
        update(ChatInFlight)
        .where(col(ChatInFlight.id) == flight_id, col(ChatInFlight.owner) == owner)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
