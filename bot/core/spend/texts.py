"""The sentences and tables of spend: budget refusals and notices, ``/budget``, ``/costs``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from bot.core.format import format_usd
from bot.core.periods import PeriodWindow, month_start, next_month_start
from bot.core.ports import UsageSummary, UsageTotals
from bot.core.pricing import nano_to_usd
from bot.core.replies import Invocation

NOTICE_PERCENT = 80


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


@dataclass(frozen=True, slots=True)
class CostReport:
    scope: str
    channel_id: str | None
    window: PeriodWindow
    summary: UsageSummary
    #: Workspace scope: this month's state of every limit (whatever the period shown).
    budgets: tuple[BudgetState, ...] = ()
    #: The moment the report was made (naive UTC): names the budgets' month.
    now: datetime | None = None
    #: Known spend per UTC day over the window's days (days without rows left out): the
    #: series its chart draws.
    daily: tuple[tuple[date, int], ...] = ()


def _usd(nano: int) -> str:
    return format_usd(nano_to_usd(nano))


def _month_label(month: datetime) -> str:
    return f"{month:%B %Y}"


def _turn(month: datetime) -> str:
    nxt = next_month_start(month)
    return f"{nxt.day} {nxt:%B} (UTC)"


def refusal(state: BudgetState, estimate_nano: int) -> str:
    """One sentence: why this chat is refused, and what lifts the refusal."""
    limit, spent = _usd(state.limit_nano), _usd(state.spent_nano)
    if state.exhausted:
        return (
            f"{state.who()} has used its {limit} budget for {_month_label(state.month)} "
            f"({spent} spent), so new chats are refused until the month turns on "
            f"{_turn(state.month)} or an admin raises the limit with /budget set."
        )
    held, needed = _usd(state.reserved_nano), _usd(estimate_nano)
    return (
        f"{state.who()} is too close to its {limit} budget for {_month_label(state.month)} "
        f"({spent} spent, {held} held by chats in progress, up to {needed} for this one); "
        "try again when those finish, or an admin can raise the limit with /budget set."
    )


def notice(state: BudgetState) -> str:
    limit, spent = _usd(state.limit_nano), _usd(state.spent_nano)
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


def _state_line(state: BudgetState, label: str) -> str:
    line = f"• {label}: {_usd(state.spent_nano)} of {_usd(state.limit_nano)} ({state.percent}%)"
    if state.reserved_nano:
        line += f", {_usd(state.reserved_nano)} held by chats in progress"
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
    lines = [f"Monthly budgets for {_month_label(month_start(now))} (calendar month, UTC):"]
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


def budget_set_text(state: BudgetState) -> str:
    who = "This channel's" if state.scope == "channel" else "The workspace's"
    return (
        f"{who} monthly budget is now {_usd(state.limit_nano)}: {_usd(state.spent_nano)} spent "
        f"so far in {state.month:%B %Y} ({state.percent}%, calendar month, UTC). At 80 % the "
        "channel is told once; at 100 % new chats are refused until the month turns or the "
        "limit rises."
    )


def budget_cleared_text(removed: bool, *, channel: bool) -> str:
    where = "this channel" if channel else "the workspace"
    if removed:
        return f"Removed the monthly budget of {where}."
    return f"There was no monthly budget on {where} to remove."


def totals_line(t: UsageTotals) -> str:
    cost = _usd(t.cost_nano)
    if t.computed_cost_chats:
        cost = f"≈{cost}"
    tokens = t.prompt_tokens + t.completion_tokens
    chats = f"{t.chats:,} chat" + ("" if t.chats == 1 else "s")
    extra = f", {t.unknown_cost_chats} of unknown cost" if t.unknown_cost_chats else ""
    return f"{cost} · {chats}{extra} · {tokens:,} tokens"


def render_costs(report: CostReport, ctx: Invocation, top: int = 10) -> str:
    s = report.summary
    where = "this channel" if report.scope == "channel" else "this workspace"
    t = s.totals
    budgets = (
        render_budget_states(report.budgets, now=report.now, channel_id=None)
        if report.scope == "workspace" and report.now is not None
        else None
    )
    if t.chats == 0 and t.failed == 0:
        empty = f"No spend in {where} for {report.window.label}."
        return f"{empty}\n{budgets}" if budgets else empty
    lines = [
        f"Spend in {where} for {report.window.label}: {totals_line(t)} "
        f"({t.prompt_tokens:,} in / {t.completion_tokens:,} out)"
    ]
    if t.computed_cost_chats:
        lines.append(
            "≈ marks estimates computed from list prices where the provider reported none."
        )
    sections: list[tuple[str, list[tuple[str, UsageTotals]], bool]] = []
    if report.scope == "workspace":
        sections.append(("By channel", s.by_channel, False))
    sections.append(("By model", s.by_model, False))
    sections.append(("By user", s.by_user, True))
    for title, rows, is_user in sections:
        if not rows:
            continue
        lines.append(f"{title}:")
        for key, totals in rows[:top]:
            label = ctx.format_user(key) if is_user else f"`{key}`"
            lines.append(f"• {label} {totals_line(totals)}")
        if len(rows) > top:
            lines.append(f"• … and {len(rows) - top} more")
    if budgets:
        lines.append(budgets)
    return "\n".join(lines)
