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
    """One limit and where this month stands against it.

    ``scope`` ``user``: a person's limit (``each_user`` when it is the each-user one);
    ``user_id`` is whose spend it counts (None: the each-user limit itself, in overviews).
    """

    scope: Literal["workspace", "channel", "user"]
    channel_id: str | None
    limit_nano: int
    spent_nano: int
    reserved_nano: int
    month: datetime
    user_id: str | None = None
    each_user: bool = False
    budget_id: int = 0
    #: The admin who set it (told privately at 80 % and 100 %).
    set_by: str | None = None

    @property
    def percent(self) -> int:
        """Whole percent used, rounded down (so "80 %" means at least 80 %)."""
        return self.spent_nano * 100 // self.limit_nano

    @property
    def exhausted(self) -> bool:
        return self.spent_nano >= self.limit_nano

    @property
    def left_nano(self) -> int:
        """What chats may still hold: the limit less what is spent and what is held."""
        return self.limit_nano - self.spent_nano - self.reserved_nano

    def who(self, *, capital: bool = True) -> str:
        text = "this workspace" if self.scope == "workspace" else "this channel"
        return text[0].upper() + text[1:] if capital else text

    def whose(self) -> str:
        """``this workspace's``, ``this channel's``, ``your``, ``the each-person``."""
        if self.scope != "user":
            return f"{self.who(capital=False)}'s"
        return "the each-person" if self.each_user else "your"


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


def refusal(state: BudgetState, needed_nano: int) -> str:
    """One sentence: why this chat is refused, and what lifts the refusal."""
    if not state.exhausted:
        return too_close(state, needed_nano)
    limit, spent = _usd(state.limit_nano), _usd(state.spent_nano)
    month, turn = _month_label(state.month), _turn(state.month)
    if state.scope == "user" and state.each_user:
        return (
            f"You have used the {limit} each-person budget for {month} ({spent} spent), so your "
            f"chats are refused until the month turns on {turn} or an admin gives you a limit "
            "of your own with /budget set --user."
        )
    if state.scope == "user":
        return (
            f"You have used your {limit} budget for {month} ({spent} spent), so your chats are "
            f"refused until the month turns on {turn} or an admin raises your limit with "
            "/budget set --user."
        )
    return (
        f"{state.who()} has used its {limit} budget for {month} ({spent} spent), so new chats "
        f"are refused until the month turns on {turn} or an admin raises the limit with "
        "/budget set."
    )


def too_close(state: BudgetState, needed_nano: int) -> str:
    """What is left of the limit (after chats in progress) is less than this chat needs."""
    limit, spent = _usd(state.limit_nano), _usd(state.spent_nano)
    held, needed = _usd(state.reserved_nano), _usd(needed_nano)
    month = _month_label(state.month)
    if state.scope == "user":
        who, its, change = "You are", f"{state.whose()}", "/budget set --user"
    else:
        who, its, change = f"{state.who()} is", "its", "/budget set"
    return (
        f"{who} too close to {its} {limit} budget for {month} ({spent} spent, {held} held by "
        f"chats in progress); this chat needs at least {needed} for its prompt and a short "
        f"answer. Try again when those chats finish, or an admin can raise the limit with "
        f"{change}."
    )


def unbounded(state: BudgetState, model: str) -> str:
    """A model without a known price: its cost cannot be kept within the limit."""
    return (
        f"`{model}` has no known price, so routerbot cannot keep this chat within "
        f"{state.whose()} {_usd(state.limit_nano)} monthly budget; an admin can set a priced "
        "default model with /models default, or add the price to the model settings file."
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


def _person_line(state: BudgetState, format_user: Callable[[str], str], me: str | None) -> str:
    if state.user_id is None:
        return (
            f"• Each person: {_usd(state.limit_nano)} a month (everyone without a limit of "
            "their own)"
        )
    who = "You" if state.user_id == me else format_user(state.user_id)
    return _state_line(state, f"{who} (each-person limit)" if state.each_user else who)


def render_budget_states(
    states: Sequence[BudgetState],
    *,
    now: datetime,
    channel_id: str | None,
    format_channel: Callable[[str], str] = lambda c: f"`{c}`",
    format_user: Callable[[str], str] = str,
    me: str | None = None,
) -> str:
    """The ``/budget`` reply (``channel_id`` given: the workspace and that channel, then the
    limits on people, ``me`` first), or the budget section of ``/costs workspace`` (every
    limit)."""
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
    persons = sorted(
        (s for s in states if s.scope == "user"),
        key=lambda s: (s.user_id != me, s.user_id is not None, s.user_id or ""),
    )
    lines.extend(_person_line(s, format_user, me) for s in persons)
    return "\n".join(lines)


def _scope_name(*, channel: bool, person: str | None, each_user: bool) -> str:
    if each_user:
        return "everyone without a limit of their own"
    if person is not None:
        return person
    return "this channel" if channel else "the workspace"


def budget_set_text(state: BudgetState, format_user: Callable[[str], str] = str) -> str:
    if state.scope == "user" and state.each_user:
        return (
            "Everyone without a limit of their own now has a monthly budget of "
            f"{_usd(state.limit_nano)} (calendar month, UTC). At 80 % and 100 % each person, "
            "and you, are told privately; at 100 % their chats are refused until the month "
            "turns or the limit rises."
        )
    if state.scope == "user":
        who = format_user(state.user_id or "")
        return (
            f"{who}'s monthly budget is now {_usd(state.limit_nano)}: "
            f"{_usd(state.spent_nano)} spent so far in {state.month:%B %Y} ({state.percent}%, "
            f"calendar month, UTC). At 80 % and 100 % they and you are told privately; at "
            "100 % their chats are refused until the month turns or the limit rises."
        )
    who = "This channel's" if state.scope == "channel" else "The workspace's"
    return (
        f"{who} monthly budget is now {_usd(state.limit_nano)}: {_usd(state.spent_nano)} spent "
        f"so far in {state.month:%B %Y} ({state.percent}%, calendar month, UTC). At 80 % the "
        "channel is told once; at 100 % new chats are refused until the month turns or the "
        "limit rises."
    )


def budget_cleared_text(
    removed: bool, *, channel: bool, person: str | None = None, each_user: bool = False
) -> str:
    where = _scope_name(channel=channel, person=person, each_user=each_user)
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


def render_my_costs(report: CostReport, top: int = 10) -> str:
    """``/costs me``: your own spend, by model and by channel, and your limit."""
    t = report.summary.totals
    if t.chats == 0 and t.failed == 0:
        lines = [f"You have no spend for {report.window.label}."]
    else:
        lines = [f"Your spend for {report.window.label}: {totals_line(t)}"]
        for title, rows in (
            ("By model", report.summary.by_model),
            ("By channel", report.summary.by_channel),
        ):
            lines.append(f"{title}:")
            lines.extend(f"• `{key}` {totals_line(totals)}" for key, totals in rows[:top])
    limit = next(iter(report.budgets), None)
    if limit is None:
        lines.append("You have no monthly limit.")
    else:
        kind = "the each-person limit" if limit.each_user else "your own limit"
        line = _state_line(limit, f"Your monthly limit ({kind}, {_month_label(limit.month)})")
        lines.append(line.removeprefix("• "))
    return "\n".join(lines)


def render_costs(report: CostReport, ctx: Invocation, top: int = 10) -> str:
    if report.scope == "me":
        return render_my_costs(report, top)
    s = report.summary
    where = "this channel" if report.scope == "channel" else "this workspace"
    t = s.totals
    budgets = (
        render_budget_states(
            report.budgets, now=report.now, channel_id=None, format_user=ctx.format_user
        )
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
