"""Small SQL helpers shared by the stores: dialect-specific upserts and naive-UTC times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

Insert = sqlite.Insert | postgresql.Insert


def upsert_insert(session: AsyncSession, table: Any) -> Insert:
    """An ``INSERT`` that supports ``ON CONFLICT`` on the session's backend.

    Both SQLite and PostgreSQL spell it the same way, so callers stay dialect-neutral; a race
    between processes is settled by the unique constraint instead of a read-then-write.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database backend: {dialect}")


@overload
def naive_utc(moment: datetime) -> datetime: ...
@overload
def naive_utc(moment: None) -> None: ...
def naive_utc(moment: datetime | None) -> datetime | None:
    """Timestamp columns hold naive UTC; accept aware datetimes from callers too."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
