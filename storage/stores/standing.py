"""Where a workspace's limits stand this month: known spend (from the daily rollup) and live
holds, for the three scopes one chat meets, or per person for every limit on people.

Both read under the budget lock on the chat path (``storage.stores.budgets.lock_budgets``),
so what they return cannot change until the caller's transaction ends.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Date,
    DateTime,
    Table,
    bindparam,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import BudgetReservation, UsageDaily
from storage.records import Standing
from storage.stores._sql import naive_utc
from storage.stores.rollups import DIM_CHANNEL, DIM_MODEL, DIM_USER, WORKSPACE_SCOPE

__all__ = ["spend_by_user", "standing"]

_daily: Table = UsageDaily.__table__  # type: ignore[attr-defined]  # set by SQLModel
_held: Table = BudgetReservation.__table__  # type: ignore[attr-defined]


@cache
def _spend_by_key_stmt(dim: str) -> CompoundSelect[Any]:
    """This month's spend and live holds per channel (``dim`` channel) or person (``user``)."""
    key = _held.c.channel_id if dim == DIM_CHANNEL else _held.c.user_id
    spent = (
        select(literal("spent"), _daily.c.group_key, func.sum(_daily.c.cost_nano))
        .where(
            _daily.c.workspace_id == bindparam("workspace_id"),
            _daily.c.scope == WORKSPACE_SCOPE,
            _daily.c.dim == dim,
            _daily.c.day >= bindparam("first_day", type_=Date),
        )
        .group_by(_daily.c.group_key)
    )
    reserved = (
        select(literal("held"), key, func.sum(_held.c.amount_nano))
        .where(
            _held.c.workspace_id == bindparam("workspace_id"),
            _held.c.expires_at > bindparam("now", type_=DateTime),
        )
        .group_by(key)
    )
    return union_all(spent, reserved)


async def _spend_by_key(
    session: AsyncSession, dim: str, workspace_id: int, first_day: date, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    rows = await session.execute(
        _spend_by_key_stmt(dim),
        {"workspace_id": workspace_id, "first_day": first_day, "now": naive_utc(now)},
    )
    spent: dict[str, int] = {}
    held: dict[str, int] = {}
    for kind, key, total in rows.all():
        (spent if kind == "spent" else held)[str(key)] = int(total)
    return spent, held


async def spend_by_user(
    session: AsyncSession, *, workspace_id: int, first_day: date, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """This month's known spend and live holds per person (reads days x people rollup
    rows): only asked for when a workspace has limits on people."""
    return await _spend_by_key(session, DIM_USER, workspace_id, first_day, now)


@cache
def _standing_stmt() -> CompoundSelect[Any]:
    def spent(kind: str, scope: Any, dim: str, *where: Any) -> Any:
        return select(literal(kind), func.coalesce(func.sum(_daily.c.cost_nano), 0)).where(
            _daily.c.workspace_id == bindparam("workspace_id"),
            _daily.c.scope == scope,
            _daily.c.dim == dim,
            _daily.c.day >= bindparam("first_day", type_=Date),
            *where,
        )

    def held(kind: str, *where: Any) -> Any:
        return select(literal(kind), func.coalesce(func.sum(_held.c.amount_nano), 0)).where(
            _held.c.workspace_id == bindparam("workspace_id"),
            _held.c.expires_at > bindparam("now", type_=DateTime),
            *where,
        )

    return union_all(
        # Workspace and channel totals from the model rows: an allowlist is short.
        spent("workspace_spent", WORKSPACE_SCOPE, DIM_MODEL),
        spent("channel_spent", bindparam("channel_id"), DIM_MODEL),
        spent("user_spent", WORKSPACE_SCOPE, DIM_USER, _daily.c.group_key == bindparam("user")),
        held("workspace_held"),
        held("channel_held", _held.c.channel_id == bindparam("channel_id")),
        held("user_held", _held.c.user_id == bindparam("user")),
    )


async def standing(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str,
    user_id: str,
    first_day: date,
    now: datetime,
) -> Standing:
    """This month's spend and live holds of a workspace, one channel and one person: what a
    chat's limits are checked against, in one query."""
    rows = await session.execute(
        _standing_stmt(),
        {
            "workspace_id": workspace_id,
            "channel_id": channel_id,
            "user": user_id,
            "first_day": first_day,
            "now": naive_utc(now),
        },
    )
    # int(): PostgreSQL's SUM(bigint) is NUMERIC, which asyncpg returns as an exact Decimal.
    values = {str(kind): int(total) for kind, total in rows.all()}
    return Standing(**values)
