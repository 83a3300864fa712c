"""What the workspace can see and set about its spend: ``/costs`` reports and ``/budget``.

Reading the workspace's spend and every budget command are admin-only (checked here); a
channel's own spend is for anyone in it, and one's own spend and limit (``/costs me``) for
oneself. Budget changes are audited in their own transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.core import audit, people, permissions
from bot.core.charts import SpendChart, spend_chart
from bot.core.commands import Period
from bot.core.deps import Deps, utcnow
from bot.core.errors import UserFacingError
from bot.core.format import format_usd
from bot.core.periods import PeriodWindow, period_window
from bot.core.ports import EACH_USER, WORKSPACE_BUDGET
from bot.core.pricing import nano_to_usd, usd_to_nano
from bot.core.replies import Invocation
from bot.core.spend.guard import budget_states
from bot.core.spend.texts import BudgetState, CostReport
from bot.core.workspaces import Workspaces

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BudgetOverview:
    """``/budget``: the limits that bind the caller here (the workspace's, this channel's,
    theirs), then every other limit on people, for the current month."""

    channel_id: str
    states: tuple[BudgetState, ...]
    now: datetime


def _last_moment(window: PeriodWindow, now: datetime) -> datetime:
    """The window's last instant (``until`` is exclusive; open windows end now)."""
    return window.until - timedelta(microseconds=1) if window.until is not None else now


def costs_chart(report: CostReport) -> SpendChart | None:
    """The chart of ``report``'s spend per day, over the days its window touches."""
    titles = {"channel": "Spend per day in this channel", "me": "Your spend per day"}
    since = report.window.since
    return spend_chart(
        report.daily,
        first_day=since.date() if since is not None else None,
        last_day=(report.now or utcnow()).date(),
        title=titles.get(report.scope, "Spend per day in this workspace"),
        period=report.window.label,
    )


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """Which limit a ``/budget set|clear`` means: ``(channel_id, user_id)`` as stored."""

    channel_id: str
    user_id: str
    target: str

    @classmethod
    def of(
        cls, ctx: Invocation, *, channel: bool, user: str | None, each_user: bool
    ) -> BudgetScope:
        if user is not None:
            person = people.user_id(ctx, user)
            return cls(WORKSPACE_BUDGET, person, audit.user_target(person))
        if each_user:
            return cls(WORKSPACE_BUDGET, EACH_USER, audit.EACH_USER)
        if channel:
            return cls(ctx.channel_id, WORKSPACE_BUDGET, audit.channel_target(ctx.channel_id))
        return cls(WORKSPACE_BUDGET, WORKSPACE_BUDGET, audit.WORKSPACE)


def _amount(nano: int | None) -> str | None:
    return None if nano is None else format_usd(nano_to_usd(nano))


class Spend:
    def __init__(self, deps: Deps, workspaces: Workspaces) -> None:
        self.deps = deps
        self.workspaces = workspaces

    async def costs(self, ctx: Invocation, period: Period, scope: str = "channel") -> CostReport:
        if scope == "workspace":
            permissions.require_admin(self.deps.settings, ctx, permissions.WORKSPACE_SPEND)
        return await self._report(ctx, period, scope)

    async def workspace_report(self, ctx: Invocation, period: Period) -> CostReport:
        """The workspace's report for the core's own use (the dashboard, which shows a member
        only their own line of it): no permission check here, so it never leaves the core
        whole except to an admin."""
        return await self._report(ctx, period, "workspace")

    async def _report(self, ctx: Invocation, period: Period, scope: str) -> CostReport:
        ws_id = await self.workspaces.id_of(ctx)
        now = self.deps.clock()
        window = period_window(period, now)
        channel = ctx.channel_id if scope == "channel" else None
        budgets: list[BudgetState] = []
        async with self.deps.store.transaction() as tx:
            if scope == "me":
                # One person's rows of the period, through their own index.
                summary = await tx.usage.summarize_user(
                    ws_id, ctx.user_id, since=window.since, until=window.until
                )
                mine = await budget_states(
                    tx, workspace_id=ws_id, channel_id=ctx.channel_id, now=now, user_id=ctx.user_id
                )
                budgets = [s for s in mine if s.scope == "user"]
            else:
                # Reads the daily rollup for whole days: a month costs days x keys rows.
                summary = await tx.usage.summarize(
                    ws_id, channel_id=channel, since=window.since, until=window.until
                )
            if scope == "workspace":
                budgets = await budget_states(tx, workspace_id=ws_id, channel_id=None, now=now)
            daily = await tx.usage.daily_spend(
                ws_id,
                channel_id=channel,
                first_day=window.since.date() if window.since else None,
                end_day=_last_moment(window, now).date() + timedelta(days=1),
                # /costs me charts the caller's own days, never the workspace's.
                user_id=ctx.user_id if scope == "me" else None,
            )
        return CostReport(scope, channel, window, summary, tuple(budgets), now, tuple(daily))

    def _require_budgets(self, ctx: Invocation, action: str) -> None:
        permissions.require_admin(self.deps.settings, ctx, action)
        if self.deps.budgets is None:
            # Without a guard nothing would enforce a limit: do not pretend to keep one.
            raise UserFacingError("Budgets are not enabled on this server.")

    async def binding(self, ctx: Invocation) -> tuple[BudgetState, ...]:
        """The limits on the caller's own chats here (the workspace's, this channel's, their
        own or the each-user one), with what counts against each: for anyone, about
        themselves."""
        ws_id = await self.workspaces.id_of(ctx)
        now = self.deps.clock()
        async with self.deps.store.transaction() as tx:
            states = await budget_states(
                tx, workspace_id=ws_id, channel_id=ctx.channel_id, now=now, user_id=ctx.user_id
            )
        return tuple(states)

    async def budget_overview(self, ctx: Invocation) -> BudgetOverview:
        self._require_budgets(ctx, "see the budgets")
        ws_id = await self.workspaces.id_of(ctx)
        now = self.deps.clock()
        async with self.deps.store.transaction() as tx:
            here = await budget_states(
                tx, workspace_id=ws_id, channel_id=ctx.channel_id, now=now, user_id=ctx.user_id
            )
            every = await budget_states(tx, workspace_id=ws_id, channel_id=None, now=now)
        # Then the limits on people that do not bind the caller: the full overview.
        shown = {s.budget_id for s in here}
        others = [s for s in every if s.scope == "user" and s.budget_id not in shown]
        return BudgetOverview(ctx.channel_id, (*here, *others), now)

    async def set_budget(
        self,
        ctx: Invocation,
        amount_usd: Decimal,
        *,
        channel: bool,
        user: str | None = None,
        each_user: bool = False,
    ) -> BudgetState:
        """Set the monthly limit of the workspace, this ``channel``, one ``user`` or
        ``each_user``; returns where it stands now."""
        self._require_budgets(ctx, "change the budgets")
        limit_nano = usd_to_nano(amount_usd)
        if limit_nano <= 0:
            raise UserFacingError("The limit must be more than $0.")
        where = BudgetScope.of(ctx, channel=channel, user=user, each_user=each_user)
        ws_id = await self.workspaces.id_of(ctx)
        now = self.deps.clock()
        async with self.deps.store.transaction() as tx:
            old = await tx.budgets.get(ws_id, where.channel_id, where.user_id)
            await tx.budgets.set(
                ws_id,
                where.channel_id,
                limit_nano=limit_nano,
                set_by=ctx.user_id,
                user_id=where.user_id,
            )
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.BUDGET_SET,
                target=where.target,
                old=_amount(old.limit_nano if old else None),
                new=_amount(limit_nano),
            )
            person = where.user_id if where.user_id != EACH_USER else ""
            states = await budget_states(
                tx,
                workspace_id=ws_id,
                channel_id=ctx.channel_id,
                now=now,
                user_id=person or ctx.user_id,
            )
            if where.user_id == EACH_USER:
                states = await budget_states(tx, workspace_id=ws_id, channel_id=None, now=now)
        log.info("budget (%s) set for workspace %s by %s", where.target, ws_id, ctx.user_id)
        return next(s for s in states if _is(s, where))

    async def clear_budget(
        self, ctx: Invocation, *, channel: bool, user: str | None = None, each_user: bool = False
    ) -> bool:
        """Remove a limit; False when there was none."""
        self._require_budgets(ctx, "change the budgets")
        where = BudgetScope.of(ctx, channel=channel, user=user, each_user=each_user)
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            old = await tx.budgets.get(ws_id, where.channel_id, where.user_id)
            if old is None or not await tx.budgets.clear(ws_id, where.channel_id, where.user_id):
                return False
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.BUDGET_CLEAR,
                target=where.target,
                old=_amount(old.limit_nano),
                new=None,
            )
        return True


def _is(state: BudgetState, where: BudgetScope) -> bool:
    """Whether ``state`` is the limit ``where`` names."""
    if where.user_id == EACH_USER:
        return state.each_user
    if where.user_id:
        return state.scope == "user" and not state.each_user and state.user_id == where.user_id
    if where.channel_id:
        return state.scope == "channel"
    return state.scope == "workspace"
