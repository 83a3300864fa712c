"""The audit log of admin changes: appended in the change's own transaction, read newest
first (``/audit``) or streamed oldest first (exports)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import AuditEntry
from storage.stores._sql import naive_utc

__all__ = ["latest_audit", "record_audit", "stream_audit"]


async def record_audit(session: AsyncSession, *, entry: AuditEntry) -> None:
    entry.created_at = naive_utc(entry.created_at)
    session.add(entry)
    await session.flush()


async def latest_audit(session: AsyncSession, *, workspace_id: int, limit: int) -> list[AuditEntry]:
    """The newest ``limit`` entries, newest first."""
    stmt = (
        select(AuditEntry)
        .where(col(AuditEntry.workspace_id) == workspace_id)
        .order_by(col(AuditEntry.created_at).desc(), col(AuditEntry.id).desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def stream_audit(
    session: AsyncSession, *, workspace_id: int, since: datetime | None, batch: int = 1000
) -> AsyncIterator[AuditEntry]:
    """Every entry since ``since``, oldest first, in batches (exports of any size)."""
    stmt = select(AuditEntry).where(col(AuditEntry.workspace_id) == workspace_id)
    if since is not None:
        stmt = stmt.where(col(AuditEntry.created_at) >= naive_utc(since))
    stmt = stmt.order_by(col(AuditEntry.created_at), col(AuditEntry.id)).execution_options(
        yield_per=batch
    )
    async for entry in await session.stream_scalars(stmt):
        yield entry
