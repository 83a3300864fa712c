"""The usage ledger: one row per chat, and exact spend summaries aggregated in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import UsageRecord
from storage.stores._sql import naive_utc


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Aggregates over some usage rows. Money in nano-USD.

    ``chats`` counts rows whose outcome is not ``error``; ``failed`` counts ``error`` rows.
    ``cost_nano`` is the exact sum of the known costs; ``computed_cost_chats`` of those were
    priced from the pricing table (shown as ≈), ``unknown_cost_chats`` non-failed chats have
    no cost at all (a failed chat costs nothing, so it is never "unknown").
    """

    cost_nano: int
    chats: int
    failed: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    computed_cost_chats: int
    unknown_cost_chats: int


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Totals, then breakdowns sorted by cost (highest first), then key."""

    totals: UsageTotals
    by_model: list[tuple[str, UsageTotals]]
    by_user: list[tuple[str, UsageTotals]]
    by_channel: list[tuple[str, UsageTotals]]


async def record_usage(session: AsyncSession, *, record: UsageRecord) -> UsageRecord:
    if record.workspace_id is None:
        raise ValueError("a usage record needs its workspace_id")
    record.created_at = naive_utc(record.created_at)
    session.add(record)
    await session.flush()
    return record


_usage: Table = UsageRecord.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _aggregates() -> list[ColumnElement[Any]]:
    is_error = col(UsageRecord.outcome) == "error"
    return [
        func.coalesce(func.sum(col(UsageRecord.cost_nano)), 0).label("cost_nano"),
        _count_if(~is_error).label("chats"),
        _count_if(is_error).label("failed"),
        func.coalesce(func.sum(col(UsageRecord.prompt_tokens)), 0).label("prompt_tokens"),
        func.coalesce(func.sum(col(UsageRecord.cached_tokens)), 0).label("cached_tokens"),
        func.coalesce(func.sum(col(UsageRecord.completion_tokens)), 0).label("completion_tokens"),
        _count_if(
            (col(UsageRecord.cost_source) == "computed") & col(UsageRecord.cost_nano).is_not(None)
        ).label("computed_cost_chats"),
        _count_if(col(UsageRecord.cost_nano).is_(None) & ~is_error).label("unknown_cost_chats"),
    ]


def _totals(row: Row[Any]) -> UsageTotals:
    # int(): PostgreSQL's SUM(bigint) is NUMERIC, which asyncpg returns as an exact Decimal.
    return UsageTotals(
        cost_nano=int(row.cost_nano),
        chats=int(row.chats),
        failed=int(row.failed),
        prompt_tokens=int(row.prompt_tokens),
        cached_tokens=int(row.cached_tokens),
        completion_tokens=int(row.completion_tokens),
        computed_cost_chats=int(row.computed_cost_chats),
        unknown_cost_chats=int(row.unknown_cost_chats),
    )


def _filters(
    workspace_id: int, channel_id: str | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    filters = [col(UsageRecord.workspace_id) == workspace_id]
    if channel_id is not None:
        filters.append(col(UsageRecord.channel_id) == channel_id)
    if since is not None:
        filters.append(col(UsageRecord.created_at) >= naive_utc(since))
    if until is not None:
        filters.append(col(UsageRecord.created_at) < naive_utc(until))
    return filters


async def _grouped(
    session: AsyncSession, key: ColumnElement[Any], filters: list[ColumnElement[bool]]
) -> list[tuple[str, UsageTotals]]:
    rows = (
        await session.execute(
            select(key.label("key"), *_aggregates()).where(*filters).group_by(key)
        )
    ).all()
    groups = [(str(row.key), _totals(row)) for row in rows]
    # Sorted here rather than in SQL: PostgreSQL's collation and SQLite's byte order disagree
    # on text, and reports must read the same on both backends.
    groups.sort(key=lambda item: (-item[1].cost_nano, item[0]))
    return groups


async def summarize_usage(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> UsageSummary:
    """Spend in ``[since, until)`` for a workspace, or one of its channels."""
    filters = _filters(workspace_id, channel_id, since, until)
    totals_row = (await session.execute(select(*_aggregates()).where(*filters))).one()
    model_key = func.coalesce(col(UsageRecord.model_served), col(UsageRecord.model_requested))
    return UsageSummary(
        totals=_totals(totals_row),
        by_model=await _grouped(session, model_key, filters),
        by_user=await _grouped(session, _usage.c.user_id, filters),
        by_channel=await _grouped(session, _usage.c.channel_id, filters),
    )


async def list_usage(
    session: AsyncSession,
    *,
    workspace_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[UsageRecord]:
    """Every usage row of a workspace in ``[since, until)``, oldest first (for exports)."""
    result = await session.scalars(
        select(UsageRecord)
        .where(*_filters(workspace_id, None, since, until))
        .order_by(col(UsageRecord.created_at), col(UsageRecord.id))
    )
    return list(result.all())
