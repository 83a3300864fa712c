"""The usage ledger: one row per chat, and exact spend summaries aggregated in SQL.

Summaries read whole UTC days from the daily rollup (``storage.stores.rollups``) and only the
partial days at either end of a period from the ledger, so a month costs days x keys rows
whatever the ledger's size, and the result still equals the exact sum of the ledger rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import UsageRecord
from storage.records import UsageSummary, UsageTokens, UsageTotals
from storage.stores._sql import naive_utc
from storage.stores.rollups import (
    APPROXIMATE_SOURCES,
    DIM_CHANNEL,
    DIM_MODEL,
    DIM_USER,
    add_to_rollups,
    rollup_groups,
)


async def record_usage(session: AsyncSession, *, record: UsageRecord) -> UsageRecord:
    if record.workspace_id is None:
        raise ValueError("a usage record needs its workspace_id")
    record.created_at = naive_utc(record.created_at)
    session.add(record)
    await session.flush()
    # Same transaction: the rollup can never disagree with the ledger, even across workers.
    await add_to_rollups(session, record)
    return record


async def find_usage_by_generation(
    session: AsyncSession, *, workspace_id: int, generation_id: str
) -> UsageRecord | None:
    """The usage row of one provider generation, if it was recorded (idempotent retries)."""
    stmt = (
        select(UsageRecord)
        .where(
            col(UsageRecord.workspace_id) == workspace_id,
            col(UsageRecord.generation_id) == generation_id,
        )
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def update_usage_cost(
    session: AsyncSession,
    *,
    workspace_id: int,
    usage_id: int,
    cost_nano: int | None,
    cost_source: str,
    tokens: UsageTokens | None = None,
) -> UsageRecord | None:
    """Correct one row's cost (reconciliation, settling) and, with ``tokens``, its token
    counts and served model; its rollup rows follow. ``None`` if not found."""
    record = await session.get(UsageRecord, usage_id, with_for_update=True)
    if record is None or record.workspace_id != workspace_id:
        return None
    await add_to_rollups(session, record, sign=-1)
    record.cost_nano = cost_nano
    record.cost_source = cost_source
    if tokens is not None:
        record.prompt_tokens = tokens.prompt_tokens
        record.cached_tokens = tokens.cached_tokens
        record.completion_tokens = tokens.completion_tokens
        record.model_served = tokens.model_served or record.model_served
    await session.flush()
    await add_to_rollups(session, record)
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
            col(UsageRecord.cost_source).in_(APPROXIMATE_SOURCES)
            & col(UsageRecord.cost_nano).is_not(None)
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


class _Acc:
    """Exact running sums of the aggregates, per group."""

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[str, list[int]] = {}

    def add(self, key: str, values: tuple[int, ...] | list[int]) -> None:
        current = self.groups.get(key)
        if current is None:
            self.groups[key] = list(values)
        else:
            for i, v in enumerate(values):
                current[i] += v

    def sorted(self) -> list[tuple[str, UsageTotals]]:
        # A group exists when at least one ledger row fell into it (a chat or a failure).
        groups = [(k, UsageTotals(*v)) for k, v in self.groups.items() if v[1] + v[2] > 0]
        # Sorted here rather than in SQL: PostgreSQL's collation and SQLite's byte order
        # disagree on text, and reports must read the same on both backends.
        groups.sort(key=lambda item: (-item[1].cost_nano, item[0]))
        return groups

    def total(self) -> UsageTotals:
        sums = [0] * len(_FIELDS)
        for values in self.groups.values():
            for i, v in enumerate(values):
                sums[i] += v
        return UsageTotals(*sums)


_FIELDS = tuple(f.name for f in fields(UsageTotals))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _split(
    since: datetime | None, until: datetime | None
) -> tuple[tuple[date | None, date | None] | None, list[tuple[datetime | None, datetime | None]]]:
    """Split ``[since, until)`` into whole UTC days (for the rollup) and partial-day ledger
    ranges; the pieces are disjoint and cover the window exactly."""
    first = (
        None
        if since is None
        else (since.date() if since.time() == time() else since.date() + timedelta(days=1))
    )
    end = None if until is None else until.date()
    if first is not None and end is not None and first >= end:
        return None, [(since, until)]  # no whole day inside: at most a day of ledger rows
    raw: list[tuple[datetime | None, datetime | None]] = []
    if since is not None and first is not None and _midnight(first) != since:
        raw.append((since, _midnight(first)))
    if until is not None and end is not None and _midnight(end) != until:
        raw.append((_midnight(end), until))
    return (first, end), raw


async def summarize_usage(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> UsageSummary:
    """Spend in ``[since, until)`` for a workspace, or one of its channels.

    Exactly the sum of the matching ledger rows: whole days come from the rollup, the partial
    days at the ends (a rolling "last 30 days", a ``until`` in mid-day) from the ledger.
    """
    days, raw_ranges = _split(naive_utc(since), naive_utc(until))
    by_model, by_user, by_channel = _Acc(), _Acc(), _Acc()
    if days is not None:
        groups = await rollup_groups(
            session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            first_day=days[0],
            end_day=days[1],
        )
        for group in groups:
            if group.dim == DIM_MODEL:
                by_model.add(group.key, group.values)
                if channel_id is not None:
                    by_channel.add(channel_id, group.values)
            elif group.dim == DIM_USER:
                by_user.add(group.key, group.values)
            elif group.dim == DIM_CHANNEL:
                by_channel.add(group.key, group.values)
    model_key = func.coalesce(col(UsageRecord.model_served), col(UsageRecord.model_requested))
    for raw_since, raw_until in raw_ranges:
        stmt = (
            select(_usage.c.channel_id, model_key.label("model"), _usage.c.user_id, *_aggregates())
            .where(*_filters(workspace_id, channel_id, raw_since, raw_until))
            .group_by(_usage.c.channel_id, model_key, _usage.c.user_id)
        )
        for row in (await session.execute(stmt)).all():
            values = [int(v) for v in row[3:]]
            by_channel.add(str(row.channel_id), values)
            by_model.add(str(row.model), values)
            by_user.add(str(row.user_id), values)
    return UsageSummary(
        totals=by_channel.total(),
        by_model=by_model.sorted(),
        by_user=by_user.sorted(),
        by_channel=by_channel.sorted(),
    )


async def summarize_ledger(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> UsageSummary:
    """The same summary straight from the ledger (no rollup): the reference for checks."""
    filters = _filters(workspace_id, channel_id, since, until)
    totals_row = (await session.execute(select(*_aggregates()).where(*filters))).one()
    model_key = func.coalesce(col(UsageRecord.model_served), col(UsageRecord.model_requested))
    return UsageSummary(
        totals=_totals(totals_row),
        by_model=await _grouped(session, model_key, filters),
        by_user=await _grouped(session, _usage.c.user_id, filters),
        by_channel=await _grouped(session, _usage.c.channel_id, filters),
    )


async def summarize_user(
    session: AsyncSession,
    *,
    workspace_id: int,
    user_id: str,
    since: datetime | None,
    until: datetime | None,
) -> UsageSummary:
    """One person's spend in ``[since, until)`` (``/costs me``), by model and by channel.

    Read from the ledger through ``ix_usage_ws_user_time``: one person's rows of a period,
    however busy the rest of the workspace is.
    """
    filters = [
        *_filters(workspace_id, None, since, until),
        col(UsageRecord.user_id) == user_id,
    ]
    totals_row = (await session.execute(select(*_aggregates()).where(*filters))).one()
    model_key = func.coalesce(col(UsageRecord.model_served), col(UsageRecord.model_requested))
    by_model = await _grouped(session, model_key, filters)
    return UsageSummary(
        totals=_totals(totals_row),
        by_model=by_model,
        by_user=[(user_id, _totals(totals_row))] if by_model else [],
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


async def stream_usage(
    session: AsyncSession,
    *,
    workspace_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    with_generation_id: bool = False,
    batch: int = 1000,
) -> AsyncIterator[UsageRecord]:
    """Like :func:`list_usage`, streamed in batches so an export never holds the whole ledger."""
    stmt = select(UsageRecord).where(*_filters(workspace_id, None, since, until))
    if with_generation_id:
        stmt = stmt.where(col(UsageRecord.generation_id).is_not(None))
    stmt = stmt.order_by(col(UsageRecord.created_at), col(UsageRecord.id)).execution_options(
        yield_per=batch
    )
    result = await session.stream_scalars(stmt)
    async for record in result:
        yield record
