"""Budgets (monthly limits per workspace, channel and person) and the reservations held
against them, and the claims that each budget notice goes out once.

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

from storage.models import Budget, BudgetNotice, BudgetReservation, UsageDaily, utcnow
from storage.records import EACH_USER, WORKSPACE_BUDGET
from storage.stores._sql import naive_utc, upsert_insert
from storage.stores.rollups import DIM_CHANNEL, WORKSPACE_SCOPE

__all__ = [
    "BUDGET_LOCK_NAMESPACE",
    "WORKSPACE_BUDGET",
    "add_reservation",
    "claim_notice",
    "clear_budget",
    "delete_reservation",
    "get_budget",
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


async def get_budgets(
    session: AsyncSession, *, workspace_id: int, channel_id: str, user_id: str = ""
) -> list[Budget]:
    """The limits a chat in ``channel_id`` by ``user_id`` meets: the workspace's, the
    channel's, then the person's own and the each-user limit (which of those two binds is
    the caller's rule)."""
    scopes = [(WORKSPACE_BUDGET, WORKSPACE_BUDGET), (channel_id, WORKSPACE_BUDGET)]
    if user_id:
        scopes += [(WORKSPACE_BUDGET, user_id), (WORKSPACE_BUDGET, EACH_USER)]
    stmt = select(Budget).where(
        col(Budget.workspace_id) == workspace_id,
        or_(
            *(
                (col(Budget.channel_id) == channel) & (col(Budget.user_id) == user)
                for channel, user in scopes
            )
        ),
    )
    budgets = list((await session.scalars(stmt)).all())
    budgets.sort(key=_scope_order)
    return budgets


def _scope_order(budget: Budget) -> tuple[int, str, str]:
    """Workspace, channels, the each-user limit, then people."""
    if budget.user_id == WORKSPACE_BUDGET:
        return (0 if budget.channel_id == WORKSPACE_BUDGET else 1, budget.channel_id, "")
    return (2 if budget.user_id == EACH_USER else 3, "", budget.user_id)


async def get_budget(
    session: AsyncSession, *, workspace_id: int, channel_id: str, user_id: str = ""
) -> Budget | None:
    stmt = select(Budget).where(
        col(Budget.workspace_id) == workspace_id,
        col(Budget.channel_id) == channel_id,
        col(Budget.user_id) == user_id,
    )
    return (await session.scalars(stmt)).first()


async def list_budgets(session: AsyncSession, *, workspace_id: int) -> list[Budget]:
    """Every limit of a workspace: the workspace-wide one first, then channels by id, then
    the each-user limit, then people by id."""
    stmt = select(Budget).where(col(Budget.workspace_id) == workspace_id)
    budgets = list((await session.scalars(stmt)).all())
    budgets.sort(key=_scope_order)
    return budgets


async def set_budget(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str,
    limit_nano: int,
    set_by: str | None,
    user_id: str = "",
) -> None:
    """Create or replace a limit (``channel_id=""`` and ``user_id=""``: the workspace's).

    A changed limit is a new budget: its notices may be given again this month.
    """
    if limit_nano <= 0:
        raise ValueError("a budget limit must be positive")
    now = utcnow()
    stmt = upsert_insert(session, Budget).values(
        workspace_id=workspace_id,
        channel_id=channel_id,
        user_id=user_id,
        limit_nano=limit_nano,
        notified_month=None,
        set_by=set_by,
        updated_at=now,
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "channel_id", "user_id"],
        set_={
            "limit_nano": limit_nano,
            "notified_month": None,
            "set_by": set_by,
            "updated_at": now,
        },
    ).returning(col(Budget.id))
    budget_id = (await session.execute(upsert)).scalar_one()
    await session.execute(delete(BudgetNotice).where(col(BudgetNotice.budget_id) == budget_id))


async def clear_budget(
    session: AsyncSession, *, workspace_id: int, channel_id: str, user_id: str = ""
) -> bool:
    found = await get_budget(
        session, workspace_id=workspace_id, channel_id=channel_id, user_id=user_id
    )
    if found is None:
        return False
    await session.execute(delete(BudgetNotice).where(col(BudgetNotice.budget_id) == found.id))
    await session.execute(delete(Budget).where(col(Budget.id) == found.id))
    return True


async def claim_notice(
    session: AsyncSession, *, budget_id: int, month: str, level: int = 80, subject: str = ""
) -> bool:
    """Mark the ``level`` % notice of ``month`` (for ``subject``, with an each-user limit) as
    given; True only for the one caller that did.

    An insert the unique constraint settles: concurrent settles, even in other processes,
    cannot both win.
    """
    stmt = (
        upsert_insert(session, BudgetNotice)
        .values(budget_id=budget_id, subject=subject, month=month, level=level)
        .on_conflict_do_nothing(index_elements=["budget_id", "subject", "month", "level"])
        .returning(col(BudgetNotice.id))
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def add_reservation(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str,
    amount_nano: int,
    now: datetime,
    ttl: timedelta,
    user_id: str = "",
    owner: str | None = None,
) -> int:
    """A hold until ``now + ttl``; with an ``owner``, a lease that process renews."""
    now = naive_utc(now)
    row = BudgetReservation(
        workspace_id=workspace_id,
        channel_id=channel_id,
        user_id=user_id,
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
