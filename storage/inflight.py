"""Answers in flight (:class:`storage.models.AnswerInFlight`): recorded in batches by the
process streaming them, kept alive by its heartbeat, and claimed by another process once that
heartbeat stops.

Claiming is a conditional update (the row still has the owner and heartbeat that were read),
so when several live processes sweep at once each orphan is finished by exactly one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import AnswerInFlight

__all__ = ["claim_orphans", "delete_answers", "heartbeat", "record_answers"]


async def record_answers(
    session: AsyncSession, *, platform: str, owner: str, targets: Sequence[str], now: datetime
) -> list[int]:
    """Insert one row per target (JSON); returns their ids, in order."""
    ids: list[int] = []
    for target in targets:
        row_id = await session.scalar(
            insert(AnswerInFlight)
            .values(platform=platform, owner=owner, target=target, heartbeat_at=now, created_at=now)
            .returning(col(AnswerInFlight.id))
        )
        assert row_id is not None
        ids.append(int(row_id))
    return ids


async def delete_answers(session: AsyncSession, *, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(delete(AnswerInFlight).where(col(AnswerInFlight.id).in_(ids)))


async def heartbeat(session: AsyncSession, *, owner: str, now: datetime) -> None:
    """Every row of ``owner`` is still being streamed."""
    await session.execute(
        update(AnswerInFlight).where(col(AnswerInFlight.owner) == owner).values(heartbeat_at=now)
    )


async def claim_orphans(
    session: AsyncSession,
    *,
    platform: str,
    owner: str,
    stale_before: datetime,
    now: datetime,
    limit: int = 50,
) -> list[AnswerInFlight]:
    """Take over rows whose owner stopped its heartbeat before ``stale_before``; each row is
    claimed by exactly one caller."""
    candidates = (
        await session.execute(
            select(AnswerInFlight)
            .where(
                col(AnswerInFlight.platform) == platform,
                col(AnswerInFlight.heartbeat_at) < stale_before,
            )
            .order_by(col(AnswerInFlight.id))
            .limit(limit)
        )
    ).scalars()
    claimed: list[AnswerInFlight] = []
    for row in list(candidates):
        result = await session.execute(
            update(AnswerInFlight)
            .where(
                col(AnswerInFlight.id) == row.id,
                col(AnswerInFlight.owner) == row.owner,
                col(AnswerInFlight.heartbeat_at) == row.heartbeat_at,
            )
            .values(owner=owner, heartbeat_at=now)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(row)
    return claimed
