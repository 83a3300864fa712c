"""The daily usage rollup: kept exact alongside the ledger, read instead of it by summaries.

Every usage row adds to five ``usage_daily`` rows for its UTC day: (its channel, ``model``),
(its channel, ``user``), and workspace-wide (``""``) ``model``, ``user`` and ``channel``. The
additions are upserts in the caller's transaction, so a rollup day always equals the sum of
that day's ledger rows; a cost correction subtracts the old row and adds the new one.

Upserts touch the five rows in a fixed order, so two concurrent usage inserts on PostgreSQL
wait for each other's row locks but can never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Table,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import UsageDaily, UsageRecord
from storage.records import UsageEntry

__all__ = [
    "AGGREGATE_FIELDS",
    "APPROXIMATE_SOURCES",
    "DIM_CHANNEL",
    "DIM_MODEL",
    "DIM_USER",
    "WORKSPACE_SCOPE",
    "RollupGroup",
    "add_to_rollups",
    "contribution",
    "daily_spend",
    "rebuild_rollups",
    "rollup_groups",
    "rollup_rows",
    "rollup_upsert",
    "spent_since",
]

#: The ``scope`` of workspace-wide rollup rows.
WORKSPACE_SCOPE = ""
DIM_MODEL = "model"
DIM_USER = "user"
DIM_CHANNEL = "channel"

#: Cost sources shown with ≈ (counted in ``computed_cost_chats``): priced from the pricing
#: table, or estimated for a chat whose provider kept no record.
APPROXIMATE_SOURCES = ("computed", "estimated")

#: The additive aggregates, in ``UsageTotals`` order.
AGGREGATE_FIELDS = (
    "cost_nano",
    "chats",
    "failed",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "computed_cost_chats",
    "unknown_cost_chats",
)

_daily: Table = UsageDaily.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass
_usage: Table = UsageRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RollupGroup:
    dim: str
    key: str
    #: The aggregates, in :data:`AGGREGATE_FIELDS` order.
    values: tuple[int, ...]


def model_key(record: UsageRecord | UsageEntry) -> str:
    """Spend is grouped by the model that served the chat (billing follows it)."""
    return record.model_served or record.model_requested


def contribution(record: UsageRecord | UsageEntry) -> tuple[int, ...]:
    """What one ledger row adds to each aggregate (the Python twin of the SQL below)."""
    failed = record.outcome == "error"
    return (
        record.cost_nano or 0,
        0 if failed else 1,
        1 if failed else 0,
        record.prompt_tokens,
        record.cached_tokens,
        record.completion_tokens,
        1 if record.cost_source in APPROXIMATE_SOURCES and record.cost_nano is not None else 0,
        1 if record.cost_nano is None and not failed else 0,
    )


def _targets(record: UsageRecord | UsageEntry) -> list[tuple[str, str, str]]:
    """(scope, dim, key) of the rollup rows a ledger row feeds, in lock order."""
    model = model_key(record)
    return [
        (record.channel_id, DIM_MODEL, model),
        (record.channel_id, DIM_USER, record.user_id),
        (WORKSPACE_SCOPE, DIM_CHANNEL, record.channel_id),
        (WORKSPACE_SCOPE, DIM_MODEL, model),
        (WORKSPACE_SCOPE, DIM_USER, record.user_id),
    ]


@cache
def rollup_upsert(dialect: str) -> Any:
    """The rollup upsert, built once per backend and run with fresh parameters (building it
    costs more than running it)."""
    insert = postgresql.insert(_daily) if dialect == "postgresql" else sqlite.insert(_daily)
    return insert.on_conflict_do_update(
        index_elements=["workspace_id", "scope", "dim", "day", "group_key"],
        set_={name: _daily.c[name] + insert.excluded[name] for name in AGGREGATE_FIELDS},
    )


def rollup_rows(record: UsageRecord | UsageEntry, *, sign: int = 1) -> list[dict[str, Any]]:
    """The five rollup rows (as upsert parameters) that one ledger row adds to (``sign=1``)
    or takes away from (``sign=-1``), in lock order."""
    values = dict(zip(AGGREGATE_FIELDS, (sign * v for v in contribution(record)), strict=True))
    day = record.created_at.date()
    return [
        {
            "workspace_id": record.workspace_id,
            "scope": scope,
            "dim": dim,
            "day": day,
            "group_key": key,
            **values,
        }
        for scope, dim, key in _targets(record)
    ]


async def add_to_rollups(session: AsyncSession, record: UsageRecord, *, sign: int = 1) -> None:
    """Add (``sign=1``) or take away (``sign=-1``) one ledger row's share of the rollup."""
    if record.workspace_id is None:
        raise ValueError("a usage record needs its workspace_id")
    # One statement, five parameter sets: the targets are in lock order, so concurrent
    # writers on PostgreSQL take the row locks in the same order and cannot deadlock.
    await session.execute(
        rollup_upsert(session.get_bind().dialect.name), rollup_rows(record, sign=sign)
    )


def _sum(column: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), 0)


@cache
def _groups_stmt(workspace_wide: bool, has_first: bool, has_end: bool) -> Select[Any]:
    # Built once per shape and reused with new parameters: constructing the statement costs
    # about as much as running it on a warm database.
    dims = [DIM_CHANNEL, DIM_MODEL, DIM_USER] if workspace_wide else [DIM_MODEL, DIM_USER]
    filters: list[ColumnElement[bool]] = [
        _daily.c.workspace_id == bindparam("workspace_id"),
        _daily.c.scope == bindparam("scope"),
        _daily.c.dim.in_(dims),
    ]
    if has_first:
        filters.append(_daily.c.day >= bindparam("first_day"))
    if has_end:
        filters.append(_daily.c.day < bindparam("end_day"))
    return (
        select(_daily.c.dim, _daily.c.group_key, *(_sum(_daily.c[n]) for n in AGGREGATE_FIELDS))
        .where(*filters)
        .group_by(_daily.c.dim, _daily.c.group_key)
    )


async def rollup_groups(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str | None,
    first_day: date | None,
    end_day: date | None,
) -> list[RollupGroup]:
    """Aggregates per (dim, key) over the days ``[first_day, end_day)`` (``None``: unbounded).

    For a channel: dims ``model`` and ``user``; for the workspace (``channel_id=None``) also
    ``channel``. One primary-key range per dim: at most days x keys rows are read.
    """
    stmt = _groups_stmt(channel_id is None, first_day is not None, end_day is not None)
    params: dict[str, Any] = {
        "workspace_id": workspace_id,
        "scope": WORKSPACE_SCOPE if channel_id is None else channel_id,
    }
    if first_day is not None:
        params["first_day"] = first_day
    if end_day is not None:
        params["end_day"] = end_day
    rows = (await session.execute(stmt, params)).all()
    # int(): PostgreSQL's SUM(bigint) is NUMERIC, which asyncpg returns as an exact Decimal.
    return [RollupGroup(row[0], row[1], tuple(int(v) for v in row[2:])) for row in rows]


async def spent_since(
    session: AsyncSession, *, workspace_id: int, channel_id: str | None, first_day: date
) -> int:
    """Known spend (nano-USD) from ``first_day`` on: the budget check's "spent this month".

    Reads days x models rollup rows (an allowlist is short; channels can be many).
    """
    scope, dim = (WORKSPACE_SCOPE if channel_id is None else channel_id), DIM_MODEL
    stmt = select(_sum(_daily.c.cost_nano)).where(
        _daily.c.workspace_id == workspace_id,
        _daily.c.scope == scope,
        _daily.c.dim == dim,
        _daily.c.day >= first_day,
    )
    return int((await session.execute(stmt)).scalar_one())


async def daily_spend(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str | None,
    first_day: date | None,
    end_day: date | None,
    user_id: str | None = None,
) -> list[tuple[date, int]]:
    """Known spend (nano-USD) per UTC day over ``[first_day, end_day)`` (``None``: unbounded),
    for a channel, one person (``user_id``, workspace-wide) or (neither) the whole workspace:
    the series a chart draws.

    Only days with rollup rows are returned, in order. Like :func:`spent_since` it reads the
    ``model`` dimension (days x models rows, one primary-key range); a person's series reads
    their own ``user`` rows of the workspace scope.
    """
    scope = WORKSPACE_SCOPE if channel_id is None else channel_id
    filters: list[ColumnElement[bool]] = [
        _daily.c.workspace_id == workspace_id,
        _daily.c.scope == scope,
    ]
    if user_id is not None:
        filters += [_daily.c.dim == DIM_USER, _daily.c.group_key == user_id]
    else:
        filters.append(_daily.c.dim == DIM_MODEL)
    if first_day is not None:
        filters.append(_daily.c.day >= first_day)
    if end_day is not None:
        filters.append(_daily.c.day < end_day)
    stmt = (
        select(_daily.c.day, _sum(_daily.c.cost_nano))
        .where(*filters)
        .group_by(_daily.c.day)
        .order_by(_daily.c.day)
    )
    rows = (await session.execute(stmt)).all()
    # int(): PostgreSQL's SUM(bigint) is NUMERIC (an exact Decimal through asyncpg).
    return [(_as_date(row[0]), int(row[1])) for row in rows]


def _as_date(value: Any) -> date:
    # SQLite hands back the stored 'YYYY-MM-DD' text when a Date column is aggregated over.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _day_expr(session: AsyncSession) -> ColumnElement[Any]:
    created = _usage.c.created_at
    if session.get_bind().dialect.name == "sqlite":
        # SQLite's date() yields 'YYYY-MM-DD', the same text SQLAlchemy stores for a Date.
        return func.date(created)
    return cast(created, Date)


def _ledger_aggregates() -> list[ColumnElement[Any]]:
    u = _usage.c
    failed = u.outcome == "error"
    return [
        _sum(u.cost_nano),
        _sum(case((~failed, 1), else_=0)),
        _sum(case((failed, 1), else_=0)),
        _sum(u.prompt_tokens),
        _sum(u.cached_tokens),
        _sum(u.completion_tokens),
        _sum(case((u.cost_source.in_(APPROXIMATE_SOURCES) & u.cost_nano.is_not(None), 1), else_=0)),
        _sum(case((u.cost_nano.is_(None) & ~failed, 1), else_=0)),
    ]


async def rebuild_rollups(
    session: AsyncSession, *, workspace_ids: Iterable[int] | None = None
) -> None:
    """Recompute the rollup from the ledger (all workspaces, or some) in bulk.

    For bulk loads and repairs; normal writes keep it current row by row. Each dimension is
    one ``INSERT … SELECT … GROUP BY`` inside the database.
    """
    ids: Sequence[int] | None = None if workspace_ids is None else list(workspace_ids)
    clear = delete(_daily)
    if ids is not None:
        clear = clear.where(_daily.c.workspace_id.in_(ids))
    await session.execute(clear)
    u = _usage.c
    day = _day_expr(session)
    model = func.coalesce(u.model_served, u.model_requested)
    specs: list[tuple[ColumnElement[Any] | None, str, ColumnElement[Any]]] = [
        (u.channel_id, DIM_MODEL, model),
        (u.channel_id, DIM_USER, u.user_id),
        (None, DIM_CHANNEL, u.channel_id),
        (None, DIM_MODEL, model),
        (None, DIM_USER, u.user_id),
    ]
    for scope, dim, key in specs:
        scope_expr = scope if scope is not None else literal(WORKSPACE_SCOPE)
        # A string constant may not appear in PostgreSQL's GROUP BY: leave the '' scope out.
        group_by = [u.workspace_id, *([scope] if scope is not None else []), day, key]
        source = select(
            u.workspace_id, scope_expr, literal(dim), day, key, *_ledger_aggregates()
        ).group_by(*group_by)
        if ids is not None:
            source = source.where(u.workspace_id.in_(ids))
        columns = ["workspace_id", "scope", "dim", "day", "group_key", *AGGREGATE_FIELDS]
        await session.execute(_daily.insert().from_select(columns, source))
