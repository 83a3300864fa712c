"""Claims on platform events, so a retried or duplicated delivery is handled exactly once.

Several processes (behind a load balancer, or Slack's own retries landing on another worker)
may receive the same event. Each one tries to insert ``(platform, event_key)``; the unique
constraint lets exactly one insert win, with no read-then-write race. Rows only need to outlive
the platform's retry window, so old ones are pruned. The claim itself is one of the chat
path's Core transactions (``storage.stores.chat_path.claim_event``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import ProcessedEvent, utcnow
from storage.stores._sql import naive_utc, upsert_insert

__all__ = ["EVENT_RETENTION", "prune_events", "raise_signal", "signal_raised_since"]

#: Slack retries for about five minutes; a day is generous and keeps the table small.
EVENT_RETENTION = timedelta(days=1)


async def raise_signal(
    session: AsyncSession, *, platform: str, key: str, now: datetime | None = None
) -> None:
    """Leave a signal for other processes under ``key`` (Slack's Stop for an answer another
    process streams): the key's row, its time moved to ``now`` if it was raised before."""
    table = ProcessedEvent.__table__  # type: ignore[attr-defined]
    insert = upsert_insert(session, table)
    at = naive_utc(now) or utcnow()
    statement = insert.values(platform=platform, event_key=key, created_at=at)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["platform", "event_key"], set_={"created_at": at}
        )
    )


async def signal_raised_since(
    session: AsyncSession, *, platform: str, key: str, since: datetime
) -> bool:
    """Whether the signal ``key`` was raised at or after ``since`` (one unique-index read)."""
    raised = await session.scalar(
        select(ProcessedEvent.created_at).where(  # type: ignore[call-overload]
            col(ProcessedEvent.platform) == platform, col(ProcessedEvent.event_key) == key
        )
    )
    return raised is not None and raised >= naive_utc(since)


async def prune_events(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete claims made before ``older_than``; returns how many went."""
    result = await session.execute(
        delete(ProcessedEvent).where(col(ProcessedEvent.created_at) < naive_utc(older_than))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
