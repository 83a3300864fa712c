"""Budgets (monthly limits per workspace and channel) and the reservations held against them.

Reserving must be serialised per workspace across processes, or two workers could both see
room for one more chat: :func:`lock_budgets` takes a transaction-scoped lock that the commit
or rollback releases (PostgreSQL: an advisory lock keyed by the workspace; SQLite: the
database's write lock, taken up front with ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    CompoundSelect,
    CursorResult,
    Date,
    DateTime,
    Table,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Budget, BudgetReservation, UsageDaily, utcnow
from storage.records import WORKSPACE_BUDGET
from storage.stores._sql import naive_utc, upsert_insert
from storage.stores.rollups import DIM_CHANNEL, WORKSPACE_SCOPE

__all__ = [
    "BUDGET_LOCK_NAMESPACE",
    "WORKSPACE_BUDGET",
    "add_reservation",
    "claim_notice",
    "clear_budget",
    "delete_reservation",
    "get_budgets",
    "has_budgets",
    "list_budgets",
    "lock_budgets",
    "prune_lapsed_reservations",
    "prune_reservations",
    "renew_reservations",
    "reserved_sum",
    "set_budget",
    "spend_by_channel",
]


#: First key of the two-key PostgreSQL advisory lock (the second is the workspace id); fixed
#: so every routerbot process contends for the same lock. ``int.from_bytes(b"rbBG")``.
BUDGET_LOCK_NAMESPACE = 0x72624247


async def lock_budgets(session: AsyncSession, *, workspace_id: int) -> None:
    """Serialise budget checks of one workspace until this transaction ends.

    SQLite: must be the session's first statement (``BEGIN IMMEDIATE`` opens the transaction
    and waits out the busy timeout for the write lock; it locks the whole database, which is
    what SQLite offers, and the transaction is kept short).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :workspace)"),
            {"namespace": BUDGET_LOCK_NAMESPACE, "workspace": workspace_id},
        )
    elif dialect == "sqlite":
        await session.execute(text("BEGIN IMMEDIATE"))
    else:  # pragma: no cover - Database only builds these two
        raise NotImplementedError(f"unsupported database backend: {dialect}")


async def has_budgets(session: AsyncSession, *, workspace_id: int) -> bool:
    """Whether the workspace has any limit at all (the chat path's lock-free fast exit)."""
    stmt = select(col(Budget.id)).where(col(Budget.workspace_id) == workspace_id).limit(1)
    return (await session.execute(stmt)).first() is not None


async def get_budgets(session: AsyncSession, *, workspace_id: int, channel_id: str) -> list[Budget]:
    """The limits that apply to a chat in ``channel_id``: the workspace's, then the channel's."""
    stmt = select(Budget).where(
        col(Budget.workspace_id) == workspace_id,
        col(Budget.channel_id).in_([WORKSPACE_BUDGET, channel_id]),
    )
    budgets = list((await session.scalars(stmt)).all())
    budgets.sort(key=lambda b: b.channel_id != WORKSPACE_BUDGET)
    return budgets


async def list_budgets(session: AsyncSession, *, workspace_id: int) -> list[Budget]:
    """Every limit of a workspace: the workspace-wide one first, then channels by id."""
    stmt = select(Budget).where(col(Budget.workspace_id) == workspace_id)
    budgets = list((await session.scalars(stmt)).all())
    budgets.sort(key=lambda b: (b.channel_id != WORKSPACE_BUDGET, b.channel_id))
    return budgets


async def set_budget(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str,
    limit_nano: int,
    set_by: str | None,
) -> None:
    """Create or replace a limit (``channel_id=""``: the workspace's).

    A changed limit is a new budget: its 80 % notice may be sent again this month.
    """
    if limit_nano <= 0:
        raise ValueError("a budget limit must be positive")
    now = utcnow()
    stmt = upsert_insert(session, Budget).values(
        workspace_id=workspace_id,
        channel_id=channel_id,
        limit_nano=limit_nano,
        notified_month=None,
        set_by=set_by,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "channel_id"],
        set_={
            "limit_nano": limit_nano,
            "notified_month": None,
            "set_by": set_by,
            "updated_at": now,
        },
    )
    await session.execute(stmt)


async def clear_budget(session: AsyncSession, *, workspace_id: int, channel_id: str) -> bool:
    result = await session.execute(
        delete(Budget).where(
            col(Budget.workspace_id) == workspace_id, col(Budget.channel_id) == channel_id
        )
    )
    return _rowcount(result) > 0


async def claim_notice(session: AsyncSession, *, budget_id: int, month: str) -> bool:
    """Mark the 80 % notice as sent for ``month``; True only for the one caller that did.

    A conditional UPDATE: concurrent settles (even in other processes) cannot both win.
    """
    result = await session.execute(
        update(Budget)
        .where(
            col(Budget.id) == budget_id,
            or_(col(Budget.notified_month).is_(None), col(Budget.notified_month) != month),
        )
        .values(notified_month=month)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def add_reservation(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str,
    amount_nano: int,
    now: datetime,
    ttl: timedelta,
    owner: str | None = None,
) -> int:
    """A hold until ``now + ttl``; with an ``owner``, a lease that process renews."""
    now = naive_utc(now)
    row = BudgetReservation(
        workspace_id=workspace_id,
        channel_id=channel_id,
        amount_nano=amount_nano,
        created_at=now,
        expires_at=now + ttl,
        owner=owner,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def delete_reservation(
    session: AsyncSession, *, workspace_id: int, reservation_id: int
) -> bool:
    result = await session.execute(
        delete(BudgetReservation).where(
            col(BudgetReservation.id) == reservation_id,
            col(BudgetReservation.workspace_id) == workspace_id,
        )
    )
    return _rowcount(result) > 0


async def reserved_sum(
    session: AsyncSession, *, workspace_id: int, channel_id: str | None, now: datetime
) -> int:
    """Live (unexpired) holds of a workspace, or of one of its channels, in nano-USD."""
    stmt = select(func.coalesce(func.sum(col(BudgetReservation.amount_nano)), 0)).where(
        col(BudgetReservation.workspace_id) == workspace_id,
        col(BudgetReservation.expires_at) > naive_utc(now),
    )
    if channel_id is not None:
        stmt = stmt.where(col(BudgetReservation.channel_id) == channel_id)
    return int((await session.execute(stmt)).scalar_one())


@cache
def _usage_by_channel_stmt() -> CompoundSelect[Any]:
    daily: Table = UsageDaily.__table__  # type: ignore[attr-defined]  # set by SQLModel
    held: Table = BudgetReservation.__table__  # type: ignore[attr-defined]
    spent = (
        select(literal("spent"), daily.c.group_key, func.sum(daily.c.cost_nano))
        .where(
            daily.c.workspace_id == bindparam("workspace_id"),
            daily.c.scope == WORKSPACE_SCOPE,
            daily.c.dim == DIM_CHANNEL,
            daily.c.day >= bindparam("first_day", type_=Date),
        )
        .group_by(daily.c.group_key)
    )
    reserved = (
        select(literal("held"), held.c.channel_id, func.sum(held.c.amount_nano))
        .where(
            held.c.workspace_id == bindparam("workspace_id"),
            held.c.expires_at > bindparam("now", type_=DateTime),
        )
        .group_by(held.c.channel_id)
    )
    return union_all(spent, reserved)


async def spend_by_channel(
    session: AsyncSession, *, workspace_id: int, first_day: date, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Known spend since ``first_day`` and live holds, per channel, in one query: the status
    of every limit of a workspace at once (reads days x channels rollup rows)."""
    rows = await session.execute(
        _usage_by_channel_stmt(),
        {"workspace_id": workspace_id, "first_day": first_day, "now": naive_utc(now)},
    )
    spent: dict[str, int] = {}
    held: dict[str, int] = {}
    for kind, channel, total in rows.all():
        (spent if kind == "spent" else held)[str(channel)] = int(total)
    return spent, held


async def prune_reservations(session: AsyncSession, *, workspace_id: int, now: datetime) -> int:
    """Drop the expired holds of a crashed or hung worker (they no longer count anyway)."""
    result = await session.execute(
        delete(BudgetReservation).where(
            col(BudgetReservation.workspace_id) == workspace_id,
            col(BudgetReservation.expires_at) <= naive_utc(now),
        )
    )
    return _rowcount(result)


async def renew_reservations(
    session: AsyncSession, *, owner: str, ids: Sequence[int], until: datetime
) -> None:
    """Extend the lease of these holds of ``owner`` (of chats it is still running)."""
    if not ids:
        return
    await session.execute(
        update(BudgetReservation)
        .where(col(BudgetReservation.owner) == owner, col(BudgetReservation.id).in_(ids))
        .values(expires_at=naive_utc(until))
        .execution_options(synchronize_session=False)
    )


async def prune_lapsed_reservations(session: AsyncSession, *, now: datetime) -> int:
    """Drop the lapsed holds of every workspace (dead processes'); they no longer count.

    Looks before it deletes, so an idle database is not written to."""
    now = naive_utc(now)
    lapsed = col(BudgetReservation.expires_at) <= now
    if (await session.execute(select(col(BudgetReservation.id)).where(lapsed).limit(1))).first():
        return _rowcount(await session.execute(delete(BudgetReservation).where(lapsed)))
    return 0


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
