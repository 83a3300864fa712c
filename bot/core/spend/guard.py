"""Monthly spend limits (SPEC §5): hold an estimate before a chat, release it after, notice at 80 %.

Protocol, per chat:

1. ``reserve``: in one transaction serialised per workspace (``budgets.lock``), count this
   calendar month's spend (from the daily rollup), the live holds and this chat's estimate
   against each applicable limit (workspace, channel); refuse with :class:`BudgetExceeded`,
   or insert a hold with an expiry.
2. The chat calls the provider and records its usage row (which updates the rollup).
3. ``settle``: delete the hold, then claim the 80 % notice once per budget and month.

Every chat in flight is covered either by its hold or by its recorded cost (briefly by both,
which only errs on the side of refusing), so concurrent chats, in one process or many,
overshoot a limit by at most what they cost beyond their estimates. A hold is a lease of the
process running the chat (``owner``), which renews it while the chat runs
(``bot.core.chat.flights``): a crashed worker's holds stop counting within one lease.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from adapters.base import ChatMessage, ModelPricing, Usage
from bot.core.deps import utcnow
from bot.core.errors import BudgetExceeded
from bot.core.periods import month_start
from bot.core.ports import WORKSPACE_BUDGET, BudgetRow, Store, UnitOfWork
from bot.core.pricing import settle_cost
from bot.core.spend.texts import NOTICE_PERCENT, BudgetState, notice, refusal

#: How long a hold lasts unless its owner renews it (``ROUTERBOT_LEASE_SECONDS`` in a running
#: process): a crashed worker's holds stop counting this soon.
RESERVATION_TTL = timedelta(seconds=45)
#: A chat's answer is rarely longer than this; the estimate only bounds budget overshoot.
ESTIMATED_COMPLETION_TOKENS = 1000


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """About 4 characters a token, and a little for the message framing."""
    return sum(len(m.content) for m in messages) // 4 + 16


def estimate_nano(messages: Sequence[ChatMessage], pricing: ModelPricing) -> int:
    """A pessimistic cost estimate for budget holds (about 4 characters a token)."""
    prompt_tokens = estimate_prompt_tokens(messages)
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=ESTIMATED_COMPLETION_TOKENS)
    return settle_cost(usage, pricing).nano or 0


class BudgetGuard(Protocol):
    """Spend limits: reserve an estimate before a chat, settle the real cost after."""

    async def reserve(
        self,
        *,
        workspace_id: int,
        channel_id: str,
        estimate_nano: int,
        has_limits: bool | None = None,
    ) -> object:
        """Hold ``estimate_nano`` against the limits; raise BudgetExceeded when over.

        ``has_limits``: whether the workspace has any limit, when the caller has just read it
        (None: the guard looks for itself).
        """
        ...

    async def settle(self, reservation: object, *, cost_nano: int | None) -> Sequence[str]:
        """Release the hold, having recorded the real cost; return notices (80 % reached)."""
        ...


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``reserve`` hands back; ``reservation_id`` is None when no limit applied."""

    workspace_id: int
    channel_id: str
    reservation_id: int | None
    estimate_nano: int


def _month_key(month: datetime | date) -> str:
    return f"{month:%Y-%m}"


async def _state(
    tx: UnitOfWork, ws_id: int, budget: BudgetRow, month: datetime, now: datetime
) -> BudgetState:
    channel = None if budget.channel_id == WORKSPACE_BUDGET else budget.channel_id
    return BudgetState(
        scope="workspace" if channel is None else "channel",
        channel_id=channel,
        limit_nano=budget.limit_nano,
        spent_nano=await tx.budgets.spent_since(ws_id, channel, month.date()),
        reserved_nano=await tx.budgets.held(ws_id, channel, now),
        month=month,
    )


async def budget_states(
    tx: UnitOfWork, *, workspace_id: int, channel_id: str | None, now: datetime
) -> list[BudgetState]:
    """This month's state of the limits that apply in ``channel_id`` (workspace first), or of
    every limit of the workspace when ``channel_id`` is None. Two queries, however many
    limits there are."""
    if channel_id is None:
        budgets = await tx.budgets.all(workspace_id)
    else:
        budgets = await tx.budgets.applying(workspace_id, channel_id)
    if not budgets:
        return []
    month = month_start(now)
    spend = await tx.budgets.by_channel(workspace_id, month.date(), now)
    states = []
    for budget in budgets:
        channel = None if budget.channel_id == WORKSPACE_BUDGET else budget.channel_id
        states.append(
            BudgetState(
                scope="workspace" if channel is None else "channel",
                channel_id=channel,
                limit_nano=budget.limit_nano,
                spent_nano=sum(spend.spent.values())
                if channel is None
                else spend.spent.get(channel, 0),
                reserved_nano=(
                    sum(spend.held.values()) if channel is None else spend.held.get(channel, 0)
                ),
                month=month,
            )
        )
    return states


class DatabaseBudgetGuard:
    """The :class:`BudgetGuard` over the shared database (holds across worker processes).

    ``clock`` returns naive UTC; inject one in tests to turn the month. ``owner``: the process
    whose lease keeper renews the holds (None: they last ``ttl``).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        ttl: timedelta = RESERVATION_TTL,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self.owner = owner

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
            async with self.store.transaction() as tx:
                has_limits = await tx.budgets.has_any(workspace_id)
        if not has_limits:
            # Most workspaces set no limit: they never take the lock or write anything.
            return none
        now = self.clock()
        async with self.store.transaction() as tx:
            await tx.budgets.lock(workspace_id)
            budgets = await tx.budgets.applying(workspace_id, channel_id)
            if not budgets:
                return none
            await tx.budgets.prune_holds(workspace_id, now)
            month = month_start(now)
            for budget in budgets:
                state = await _state(tx, workspace_id, budget, month, now)
                if state.spent_nano + state.reserved_nano + estimate_nano > state.limit_nano:
                    # Raising rolls the transaction back, which releases the lock.
                    raise BudgetExceeded(refusal(state, estimate_nano))
            hold_id = await tx.budgets.hold(
                workspace_id,
                channel_id,
                amount_nano=estimate_nano,
                now=now,
                ttl=self.ttl,
                owner=self.owner,
            )
        return Reservation(workspace_id, channel_id, hold_id, estimate_nano)

    async def settle(self, reservation: object, *, cost_nano: int | None) -> Sequence[str]:
        """Release the hold (the usage row already carries the real cost); return the 80 %
        notices this chat triggered, each at most once per budget and month."""
        if not isinstance(reservation, Reservation) or reservation.reservation_id is None:
            return ()
        now = self.clock()
        month = month_start(now)
        notices: list[str] = []
        ws_id = reservation.workspace_id
        async with self.store.transaction() as tx:
            await tx.budgets.release(ws_id, reservation.reservation_id)
            for budget in await tx.budgets.applying(ws_id, reservation.channel_id):
                state = await _state(tx, ws_id, budget, month, now)
                if state.percent < NOTICE_PERCENT or budget.notified_month == _month_key(month):
                    continue
                if await tx.budgets.claim_notice(budget.id, _month_key(month)):
                    notices.append(notice(state))
        return notices
