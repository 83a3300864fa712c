"""Monthly spend limits (SPEC §5): hold a chat's worst case before it runs, release it after,
and say when a limit reaches 80 % and 100 %.

Protocol, per chat:

1. ``reserve``: in one transaction serialised per workspace (``budgets.lock``: PostgreSQL
   advisory lock, SQLite ``BEGIN IMMEDIATE``), read this calendar month's spend (from the
   daily rollup) and the live holds of the workspace, the channel and the person, apply the
   rules of :mod:`bot.core.spend.limits` to every limit that binds the chat (workspace,
   channel, the person's own or else the each-user one), and insert a hold of the chat's
   worst case with an expiry, or refuse with :class:`BudgetExceeded`.
2. The chat calls the provider with ``max_completion_tokens`` capped so that its worst case
   is the hold, and records its usage row (which updates the rollup).
3. ``settle``: delete the hold, then claim each 80 % and 100 % notice once per limit, month
   (and person, for the each-user limit).

Every chat in flight is covered by its hold or by its recorded cost (briefly by both, which
only errs on the side of refusing), so however many chats run, in one process or many, a
limit is overshot by at most the error of the prompts' estimates. A hold is a lease of the
process running the chat (``owner``), which renews it while the chat runs
(``bot.core.chat.flights``): a crashed worker's holds stop counting within one lease.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from adapters.base import ChatMessage, ModelPricing, Usage
from bot.core.deps import utcnow
from bot.core.periods import month_start
from bot.core.ports import EACH_USER, WORKSPACE_BUDGET, BudgetRow, Store, UnitOfWork
from bot.core.pricing import settle_cost
from bot.core.spend.limits import Ask, admit, binding, state_of
from bot.core.spend.texts import NOTICE_PERCENT, BudgetState

#: How long a hold lasts unless its owner renews it (``ROUTERBOT_LEASE_SECONDS`` in a running
#: process): a crashed worker's holds stop counting this soon.
RESERVATION_TTL = timedelta(seconds=45)
#: The answer length of :func:`estimate_nano`, the fixed estimate of earlier releases (kept
#: for callers that hold a fixed amount; chats hold their capped worst case instead).
ESTIMATED_COMPLETION_TOKENS = 1000


def estimate_nano(messages: Sequence[ChatMessage], pricing: ModelPricing) -> int:
    """A fixed cost estimate: about 4 characters a token and a 1,000-token answer."""
    prompt_tokens = sum(len(m.content) for m in messages) // 4 + 16
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=ESTIMATED_COMPLETION_TOKENS)
    return settle_cost(usage, pricing).nano or 0


@dataclass(frozen=True, slots=True)
class Crossing:
    """A limit that reached ``level`` % this month, claimed by this chat (given once)."""

    state: BudgetState
    level: Literal[80, 100]


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``reserve`` hands back; ``reservation_id`` is None when no limit applied."""

    workspace_id: int
    channel_id: str
    reservation_id: int | None
    estimate_nano: int
    user_id: str = ""
    #: ``max_completion_tokens`` for the request (None: the limits ask for no cap).
    max_tokens: int | None = None
    #: The limit with the least left, when the limits shortened the answer's cap.
    capped_by: BudgetState | None = None


class BudgetGuard(Protocol):
    """Spend limits: hold a chat's worst case before it runs, settle after."""

    async def reserve(
        self,
        *,
        workspace_id: int,
        channel_id: str,
        estimate_nano: int = 0,
        has_limits: bool | None = None,
        user_id: str = "",
        ask: Ask | None = None,
    ) -> Reservation:
        """Hold ``ask``'s worst case (or the fixed ``estimate_nano``) against every limit
        that binds the chat; raise BudgetExceeded when it does not fit.

        ``has_limits``: whether the workspace has any limit, when the caller has just read it
        (None: the guard looks for itself).
        """
        ...

    async def settle(self, reservation: object, *, cost_nano: int | None) -> Sequence[Crossing]:
        """Release the hold, having recorded the real cost; return the limits this chat
        took to 80 % or 100 % (each at most once a month)."""
        ...


def _month_key(month: datetime) -> str:
    return f"{month:%Y-%m}"


async def budget_states(
    tx: UnitOfWork,
    *,
    workspace_id: int,
    channel_id: str | None,
    now: datetime,
    user_id: str = "",
) -> list[BudgetState]:
    """This month's state of the limits that bind ``user_id`` in ``channel_id`` (workspace,
    channel, the person's), or of every limit of the workspace when ``channel_id`` is None
    (then the each-user limit has no spend of its own). Two or three queries."""
    if channel_id is None:
        budgets = await tx.budgets.all(workspace_id)
    else:
        budgets = binding(await tx.budgets.applying(workspace_id, channel_id, user_id), user_id)
    if not budgets:
        return []
    month = month_start(now)
    channels = people = None
    if any(b.user_id == WORKSPACE_BUDGET for b in budgets):
        channels = await tx.budgets.by_channel(workspace_id, month.date(), now)
    if any(b.user_id != WORKSPACE_BUDGET for b in budgets):
        people = await tx.budgets.by_user(workspace_id, month.date(), now)
    states = []
    for budget in budgets:
        channel = None if budget.channel_id == WORKSPACE_BUDGET else budget.channel_id
        scope: Literal["workspace", "channel", "user"]
        if people is not None and budget.user_id != WORKSPACE_BUDGET:
            # The each-user limit counts the asker's spend, when there is an asker.
            whose: str | None = budget.user_id
            if budget.user_id == EACH_USER:
                whose = (user_id or None) if channel_id is not None else None
            spent = people.spent.get(whose, 0) if whose else 0
            held = people.held.get(whose, 0) if whose else 0
            scope = "user"
        elif channels is not None and channel is None:
            spent, held, whose = sum(channels.spent.values()), sum(channels.held.values()), None
            scope = "workspace"
        else:
            assert channels is not None
            assert channel is not None
            spent, held = channels.spent.get(channel, 0), channels.held.get(channel, 0)
            whose, scope = None, "channel"
        states.append(
            BudgetState(
                scope=scope,
                channel_id=channel,
                limit_nano=budget.limit_nano,
                spent_nano=spent,
                reserved_nano=held,
                month=month,
                user_id=whose,
                each_user=budget.user_id == EACH_USER,
                budget_id=budget.id,
                set_by=budget.set_by,
            )
        )
    return states


async def _binding_states(
    tx: UnitOfWork, ws_id: int, channel_id: str, user_id: str, now: datetime
) -> list[BudgetState]:
    budgets: list[BudgetRow] = binding(
        await tx.budgets.applying(ws_id, channel_id, user_id), user_id
    )
    if not budgets:
        return []
    month = month_start(now)
    standing = await tx.budgets.standing(ws_id, channel_id, user_id, month.date(), now)
    return [state_of(b, standing, month, user_id) for b in budgets]


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
        estimate_nano: int = 0,
        has_limits: bool | None = None,
        user_id: str = "",
        ask: Ask | None = None,
    ) -> Reservation:
        ask = ask or Ask(prompt_nano=estimate_nano)
        none = Reservation(workspace_id, channel_id, None, 0, user_id)
        if has_limits is None:
            async with self.store.transaction() as tx:
                has_limits = await tx.budgets.has_any(workspace_id)
        if not has_limits:
            # Most workspaces set no limit: they never take the lock or write anything.
            return none
        now = self.clock()
        async with self.store.transaction() as tx:
            await tx.budgets.lock(workspace_id)
            states = await _binding_states(tx, workspace_id, channel_id, user_id, now)
            if not states:
                return none
            await tx.budgets.prune_holds(workspace_id, now)
            # Raising rolls the transaction back, which releases the lock.
            admission = admit(states, ask)
            hold_id = await tx.budgets.hold(
                workspace_id,
                channel_id,
                amount_nano=admission.hold_nano,
                now=now,
                ttl=self.ttl,
                user_id=user_id,
                owner=self.owner,
            )
        capped_by = admission.tightest if admission.capped else None
        return Reservation(
            workspace_id,
            channel_id,
            hold_id,
            admission.hold_nano,
            user_id,
            admission.max_tokens,
            capped_by,
        )

    async def settle(self, reservation: object, *, cost_nano: int | None) -> Sequence[Crossing]:
        """Release the hold (the usage row already carries the real cost); return the limits
        this chat took to 80 % or 100 %, each claimed at most once per limit and month (and
        person, for the each-user limit) however many workers settle at once."""
        if not isinstance(reservation, Reservation) or reservation.reservation_id is None:
            return ()
        now = self.clock()
        month = _month_key(month_start(now))
        crossings: list[Crossing] = []
        ws_id, user_id = reservation.workspace_id, reservation.user_id
        async with self.store.transaction() as tx:
            await tx.budgets.release(ws_id, reservation.reservation_id)
            for state in await _binding_states(tx, ws_id, reservation.channel_id, user_id, now):
                crossing = await _cross(tx, state, month)
                if crossing is not None:
                    crossings.append(crossing)
        return crossings


async def _cross(tx: UnitOfWork, state: BudgetState, month: str) -> Crossing | None:
    """Claim ``state``'s notice for ``month`` if it reached one; the crossing if this caller
    won the claim."""
    if state.percent < NOTICE_PERCENT:
        return None
    subject = (state.user_id or "") if state.each_user else ""
    if state.exhausted:
        full = await tx.budgets.claim_notice(state.budget_id, month, level=100, subject=subject)
        # The 100 % notice says all the 80 % one would: claim both, give one.
        await tx.budgets.claim_notice(state.budget_id, month, level=80, subject=subject)
        return Crossing(state, 100) if full else None
    if await tx.budgets.claim_notice(state.budget_id, month, level=80, subject=subject):
        return Crossing(state, 80)
    return None
