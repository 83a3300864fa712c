"""The data of a person's dashboard (Slack's Home tab): plain values a front-end lays out.

For everyone: the models they may use (default marked, prices), their own spend this month
and the limits that apply to their chats. For admins also: the API keys (masked), every limit
with its spend, this month's spend by channel, the top spenders and the chart of spend per day.

It is read fresh each time, cheaply: the allowlist, and one month summary of the workspace
(the daily rollup, with the limits and the daily series read in the same session), from which
a member's own line is taken; an admin's key status asks the provider, so it is kept for a
minute (:class:`KeyStatusCache`). Members see nothing of other people's spend: the workspace
summary is read on their behalf, and only their own row and their limits leave this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.allowlist import ModelEntry
from bot.core.charts import SpendChart
from bot.core.keys import KeyStatus
from bot.core.ports import UsageTotals
from bot.core.replies import Invocation
from bot.core.service import ProviderService
from bot.core.spend.costs import costs_chart
from bot.core.spend.texts import BudgetState

__all__ = [
    "AdminDashboard",
    "Dashboard",
    "KeyStatusCache",
    "SpendLine",
    "build_dashboard",
]

#: How many channels and people an admin's dashboard lists.
TOP = 8
KEY_STATUS_SECONDS = 60.0
KEY_STATUS_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class SpendLine:
    """What one channel, person or workspace spent: ``key`` is its id ("" for the total)."""

    key: str
    cost_nano: int
    chats: int
    #: Some of the cost was computed from list prices (the provider reported none).
    estimated: bool = False
    #: Chats whose cost is not known (stopped or cancelled before usage was reported).
    unknown_chats: int = 0

    @classmethod
    def of(cls, key: str, totals: UsageTotals | None) -> SpendLine:
        if totals is None:
            return cls(key, 0, 0)
        return cls(
            key,
            totals.cost_nano,
            totals.chats,
            bool(totals.computed_cost_chats),
            totals.unknown_cost_chats,
        )


@dataclass(frozen=True, slots=True)
class AdminDashboard:
    keys: tuple[KeyStatus, ...]
    #: Why ``keys`` could not be read now (the provider did not answer in time), if so.
    keys_problem: str | None
    limits: tuple[BudgetState, ...]
    workspace: SpendLine
    by_channel: tuple[SpendLine, ...]
    channels_total: int
    top_users: tuple[SpendLine, ...]
    chart: SpendChart | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    user_id: str
    now: datetime
    #: The month the figures cover, e.g. "March 2026".
    month: str
    models: tuple[ModelEntry, ...]
    mine: SpendLine
    #: The limits on this person's chats here (the workspace's; their channel's, if any).
    my_limits: tuple[BudgetState, ...]
    admin: AdminDashboard | None


class KeyStatusCache:
    """Key status per workspace for a minute: each call asks the provider (``GET /key``)."""

    def __init__(
        self, ttl: float = KEY_STATUS_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, tuple[KeyStatus, ...]]] = {}

    async def get(
        self, service: ProviderService, ctx: Invocation
    ) -> tuple[tuple[KeyStatus, ...], str | None]:
        key = (ctx.platform, ctx.workspace_id)
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1], None
        try:
            async with asyncio.timeout(KEY_STATUS_TIMEOUT):
                statuses = tuple(await service.keys.key_status(ctx))
        except TimeoutError:
            return (), "the provider did not answer in time"
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl, statuses)
        return statuses, None

    def forget(self, platform: str, workspace_id: str) -> None:
        self._entries.pop((platform, workspace_id), None)


async def build_dashboard(
    service: ProviderService, ctx: Invocation, keys: KeyStatusCache | None = None
) -> Dashboard:
    """``ctx.channel_id`` is where this person's own channel limit would be (their DM)."""
    admin = service.is_admin(ctx)
    models = tuple(await service.allowlist.list_models(ctx))
    # The month summary is read for the whole workspace whoever asks (one read serves every
    # line below); a member's dashboard keeps only that member's row and limits.
    report = await service.spend.workspace_report(ctx, "month")
    summary = report.summary
    now = report.now or service.clock()
    mine = SpendLine.of(ctx.user_id, dict(summary.by_user).get(ctx.user_id))
    limits = report.budgets
    my_limits = await service.spend.binding(ctx)
    admin_part = None
    if admin:
        statuses, problem = await (keys or KeyStatusCache()).get(service, ctx)
        admin_part = AdminDashboard(
            keys=statuses,
            keys_problem=problem,
            limits=limits,
            workspace=SpendLine.of("", summary.totals),
            by_channel=_lines(summary.by_channel),
            channels_total=len(summary.by_channel),
            top_users=_lines(summary.by_user),
            chart=costs_chart(report),
        )
    return Dashboard(
        user_id=ctx.user_id,
        now=now,
        month=f"{now:%B %Y}",
        models=models,
        mine=mine,
        my_limits=my_limits,
        admin=admin_part,
    )


def _lines(rows: Sequence[tuple[str, UsageTotals]]) -> tuple[SpendLine, ...]:
    ranked = sorted(rows, key=lambda row: (-row[1].cost_nano, -row[1].chats, row[0]))
    return tuple(SpendLine.of(key, totals) for key, totals in ranked[:TOP])
