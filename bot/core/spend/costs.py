"""What the workspace can see and set about its spend: ``/costs`` reports and ``/budget``.

Reading the workspace's spend and every budget command are admin-only (checked here); a
channel's own spend is for anyone in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.core import permissions
from bot.core.charts import SpendChart, spend_chart
from bot.core.commands import Period
from bot.core.deps import Deps, utcnow
from bot.core.errors import UserFacingError
from bot.core.periods import PeriodWindow, period_window
from bot.core.ports import WORKSPACE_BUDGET
from bot.core.pricing import usd_to_nano
from bot.core.replies import Invocation
from bot.core.spend.guard import budget_states
from bot.core.spend.texts import BudgetState, CostReport
from bot.core.workspaces import Workspaces

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BudgetOverview:
    """``/budget``: the workspace's and this channel's limits for the current month."""

    channel_id: str
    states: tuple[BudgetState, ...]
    now: datetime


def _last_moment(window: PeriodWindow, now: datetime) -> datetime:
    """The window's last instant (``until`` is exclusive; open windows end now)."""
    return window.until - timedelta(microseconds=1) if window.until is not None else now


def costs_chart(report: CostReport) -> SpendChart | None:
    """The chart of ``report``'s spend per day, over the days its window touches."""
    where = "this channel" if report.scope == "channel" else "this workspace"
    since = report.window.since
    return spend_chart(
        report.daily,
        first_day=since.date() if since is not None else None,
        last_day=(report.now or utcnow()).date(),
        title=f"Spend per day in {where}",
        period=report.window.label,
    )


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
            )
        return CostReport(scope, channel, window, summary, tuple(budgets), now, tuple(daily))

    def _require_budgets(self, ctx: Invocation, action: str) -> None:
        permissions.require_admin(self.deps.settings, ctx, action)
        if self.deps.budgets is None:
            # Without a guard nothing would enforce a limit: do not pretend to keep one.
            raise UserFacingError("Budgets are not enabled on this server.")

    async def budget_overview(self, ctx: Invocation) -> BudgetOverview:
        self._require_budgets(ctx, "see the budgets")
        ws_id = await self.workspaces.id_of(ctx)
        now = self.deps.clock()
        async with self.deps.store.transaction() as tx:
            states = await budget_states(tx, workspace_id=ws_id, channel_id=ctx.channel_id, now=now)
        return BudgetOverview(ctx.channel_id, tuple(states), now)

    async def set_budget(
        self, ctx: Invocation, amount_usd: Decimal, *, channel: bool
    ) -> BudgetState:
        """Set the workspace's (or, with ``channel``, this channel's) monthly limit."""
        self._require_budgets(ctx, "change the budgets")
        limit_nano = usd_to_nano(amount_usd)
        if limit_nano <= 0:
            raise UserFacingError("The limit must be more than $0.")
        ws_id = await self.workspaces.id_of(ctx)
        channel_id = ctx.channel_id if channel else WORKSPACE_BUDGET
        now = self.deps.clock()
        async with self.deps.store.transaction() as tx:
            await tx.budgets.set(ws_id, channel_id, limit_nano=limit_nano, set_by=ctx.user_id)
            states = await budget_states(tx, workspace_id=ws_id, channel_id=ctx.channel_id, now=now)
        wanted = "channel" if channel else "workspace"
        log.info("budget (%s) set for workspace %s by %s", wanted, ws_id, ctx.user_id)
        return next(s for s in states if s.scope == wanted)

    async def clear_budget(self, ctx: Invocation, *, channel: bool) -> bool:
        """Remove a limit; False when there was none."""
        self._require_budgets(ctx, "change the budgets")
        ws_id = await self.workspaces.id_of(ctx)
        channel_id = ctx.channel_id if channel else WORKSPACE_BUDGET
        async with self.deps.store.transaction() as tx:
            return await tx.budgets.clear(ws_id, channel_id)
