"""Monthly spend limits (SPEC §5): reserve before a chat, settle after, notice at 80 %.

Protocol, per chat:

1. ``reserve``: in one transaction serialised per workspace (``stores.lock_budgets``), count
   this calendar month's spend (from the daily rollup), the live reservations and this
   chat's estimate against each applicable limit (workspace, channel); refuse with
   :class:`BudgetExceeded`, or insert a reservation row with an expiry.
2. The service calls the provider and records the usage row (which updates the rollup).
3. ``settle``: delete the reservation, then claim the 80 % notice once per budget and month.

Every chat in flight is covered either by its reservation or by its recorded cost (briefly
by both, which only errs on the side of refusing), so concurrent chats, in one process or
many, overshoot a limit by at most what they cost beyond their estimates. A crashed worker's
holds lapse at ``expires_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import BudgetExceeded
from bot.core.format import format_usd
from bot.core.periods import month_start, next_month_start
from bot.core.pricing import nano_to_usd
from storage import stores
from storage.db import Database
from storage.models import Budget, utcnow
from storage.stores import WORKSPACE_BUDGET

__all__ = [
    "NOTICE_PERCENT",
    "RESERVATION_TTL",
    "BudgetState",
    "DatabaseBudgetGuard",
    "Reservation",
    "budget_states",
    "render_budget_states",
]

#: Longer than any chat can run (the adapters' timeouts are far shorter), short enough that a
#: crashed worker's holds do not block a workspace for long.
RESERVATION_TTL = timedelta(minutes=15)
NOTICE_PERCENT = 80


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``reserve`` hands back; ``reservation_id`` is None when no limit applied."""

    workspace_id: int
    channel_id: str
    reservation_id: int | None
    estimate_nano: int


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One limit and where this month stands against it."""

    scope: Literal["workspace", "channel"]
    channel_id: str | None
    limit_nano: int
    spent_nano: int
    reserved_nano: int
    month: datetime

    @property
    def percent(self) -> int:
        """Whole percent used, rounded down (so "80 %" means at least 80 %)."""
        return self.spent_nano * 100 // self.limit_nano

    @property
    def exhausted(self) -> bool:
        return self.spent_nano >= self.limit_nano

    def who(self, *, capital: bool = True) -> str:
        text = "this workspace" if self.scope == "workspace" else "this channel"
        return text[0].upper() + text[1:] if capital else text


def _month_label(month: datetime) -> str:
    return f"{month:%B %Y}"


def _turn(month: datetime) -> str:
    nxt = next_month_start(month)
    return f"{nxt.day} {nxt:%B} (UTC)"


def refusal(state: BudgetState, estimate_nano: int) -> str:
    """One sentence: why this chat is refused, and what lifts the refusal."""
    limit = format_usd(nano_to_usd(state.limit_nano))
    spent = format_usd(nano_to_usd(state.spent_nano))
    if state.exhausted:
        return (
            f"{state.who()} has used its {limit} budget for {_month_label(state.month)} "
            f"({spent} spent), so new chats are refused until the month turns on "
            f"{_turn(state.month)} or an admin raises the limit with /budget set."
        )
    held = format_usd(nano_to_usd(state.reserved_nano))
    needed = format_usd(nano_to_usd(estimate_nano))
    return (
        f"{state.who()} is too close to its {limit} budget for {_month_label(state.month)} "
        f"({spent} spent, {held} held by chats in progress, up to {needed} for this one); "
        "try again when those finish, or an admin can raise the limit with /budget set."
    )


def notice(state: BudgetState) -> str:
    limit = format_usd(nano_to_usd(state.limit_nano))
    spent = format_usd(nano_to_usd(state.spent_nano))
    month = _month_label(state.month)
    if state.exhausted:
        return (
            f"⚠ {state.who()} has used its {limit} monthly budget ({spent} spent in {month}, "
            f"UTC); new chats are refused until {_turn(state.month)} or an admin raises it."
        )
    return (
        f"⚠ {state.who()} has used {state.percent}% of its {limit} monthly budget "
        f"({spent} spent in {month}, UTC)."
    )


async def _state(
    session: AsyncSession, budget: Budget, month: datetime, now: datetime
) -> BudgetState:
    channel = None if budget.channel_id == WORKSPACE_BUDGET else budget.channel_id
    spent = await stores.spent_since(
        session, workspace_id=budget.workspace_id, channel_id=channel, first_day=month.date()
    )
    reserved = await stores.reserved_sum(
        session, workspace_id=budget.workspace_id, channel_id=channel, now=now
    )
    return BudgetState(
        scope="workspace" if channel is None else "channel",
        channel_id=channel,
        limit_nano=budget.limit_nano,
        spent_nano=spent,
        reserved_nano=reserved,
        month=month,
    )


async def budget_states(
    session: AsyncSession, *, workspace_id: int, channel_id: str | None, now: datetime
) -> list[BudgetState]:
    """This month's state of the limits that apply in ``channel_id`` (workspace first), or of
    every limit of the workspace when ``channel_id`` is None. Two queries, however many
    limits there are."""
    if channel_id is None:
        budgets = await stores.list_budgets(session, workspace_id=workspace_id)
    else:
        budgets = await stores.get_budgets(
            session, workspace_id=workspace_id, channel_id=channel_id
        )
    if not budgets:
        return []
    month = month_start(now)
    spent, reserved = await stores.spend_by_channel(
        session, workspace_id=workspace_id, first_day=month.date(), now=now
    )
    states = []
    for budget in budgets:
        channel = None if budget.channel_id == WORKSPACE_BUDGET else budget.channel_id
        states.append(
            BudgetState(
                scope="workspace" if channel is None else "channel",
                channel_id=channel,
                limit_nano=budget.limit_nano,
                spent_nano=sum(spent.values()) if channel is None else spent.get(channel, 0),
                reserved_nano=(
                    sum(reserved.values()) if channel is None else reserved.get(channel, 0)
                ),
                month=month,
            )
        )
    return states


def _state_line(state: BudgetState, label: str) -> str:
    limit = format_usd(nano_to_usd(state.limit_nano))
    spent = format_usd(nano_to_usd(state.spent_nano))
    line = f"• {label}: {spent} of {limit} ({state.percent}%)"
    if state.reserved_nano:
        line += f", {format_usd(nano_to_usd(state.reserved_nano))} held by chats in progress"
    if state.exhausted:
        line += " — limit reached, new chats are refused"
    elif state.percent >= NOTICE_PERCENT:
        line += " — over 80 %"
    return line


def render_budget_states(
    states: Sequence[BudgetState],
    *,
    now: datetime,
    channel_id: str | None,
    format_channel: Callable[[str], str] = lambda c: f"`{c}`",
) -> str:
    """The ``/budget`` reply (``channel_id`` given: the workspace and that channel), or the
    budget section of ``/costs workspace`` (every limit)."""
    month = month_start(now)
    lines = [f"Monthly budgets for {_month_label(month)} (calendar month, UTC):"]
    workspace = next((s for s in states if s.scope == "workspace"), None)
    lines.append(_state_line(workspace, "Workspace") if workspace else "• Workspace: no limit")
    channels = [s for s in states if s.scope == "channel"]
    if channel_id is not None:
        here = next((s for s in channels if s.channel_id == channel_id), None)
        lines.append(_state_line(here, "This channel") if here else "• This channel: no limit")
    else:
        lines.extend(
            _state_line(s, f"Channel {format_channel(s.channel_id or '')}") for s in channels
        )
    return "\n".join(lines)


class DatabaseBudgetGuard:
    """The :class:`~bot.core.service.BudgetGuard` over the shared database.

    ``clock`` returns naive UTC; inject one in tests to turn the month.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        ttl: timedelta = RESERVATION_TTL,
    ) -> None:
        self.db = db
        self.clock = clock
        self.ttl = ttl

    async def reserve(
        self,
        *,
        workspace_id: int,
        channel_id: str,
        estimate_nano: int,
        has_limits: bool | None = None,
    ) -> Reservation:
        none = Reservation(workspace_id, channel_id, None, estimate_nano)
        if has_limits is None:
            async with self.db.session() as session:
                has_limits = await stores.has_budgets(session, workspace_id=workspace_id)
        if not has_limits:
            # Most workspaces set no limit: they never take the lock or write anything.
            return none
        now = self.clock()
        async with self.db.session() as session:
            await stores.lock_budgets(session, workspace_id=workspace_id)
            budgets = await stores.get_budgets(
                session, workspace_id=workspace_id, channel_id=channel_id
            )
            if not budgets:
                return none
            await stores.prune_reservations(session, workspace_id=workspace_id, now=now)
            month = month_start(now)
            for budget in budgets:
                state = await _state(session, budget, month, now)
                if state.spent_nano + state.reserved_nano + estimate_nano > state.limit_nano:
                    # Raising rolls the transaction back, which releases the lock.
                    raise BudgetExceeded(refusal(state, estimate_nano))
            reservation_id = await stores.add_reservation(
                session,
                workspace_id=workspace_id,
                channel_id=channel_id,
                amount_nano=estimate_nano,
                now=now,
                ttl=self.ttl,
            )
        return Reservation(workspace_id, channel_id, reservation_id, estimate_nano)

    async def settle(self, reservation: object, *, cost_nano: int | None) -> Sequence[str]:
        """Release the hold (the usage row already carries the real cost); return the 80 %
        notices this chat triggered, each at most once per budget and month."""
        if not isinstance(reservation, Reservation) or reservation.reservation_id is None:
            return ()
        now = self.clock()
        month = month_start(now)
        notices: list[str] = []
        async with self.db.session() as session:
            await stores.delete_reservation(
                session,
                workspace_id=reservation.workspace_id,
                reservation_id=reservation.reservation_id,
            )
            budgets = await stores.get_budgets(
                session,
                workspace_id=reservation.workspace_id,
                channel_id=reservation.channel_id,
            )
            for budget in budgets:
                state = await _state(session, budget, month, now)
                if state.percent < NOTICE_PERCENT or budget.notified_month == _month_key(month):
                    continue
                assert budget.id is not None
                if await stores.claim_notice(session, budget_id=budget.id, month=_month_key(month)):
                    notices.append(notice(state))
        return notices


def _month_key(month: datetime | date) -> str:
    return f"{month:%Y-%m}"
