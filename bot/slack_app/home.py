"""The Home tab in Block Kit, laid out from a :class:`~bot.core.dashboard.Dashboard`.

Only layout lives here: which facts a person may see is decided by the dashboard (a member's
has no admin part). A view holds at most 100 blocks and a section 3,000 characters, so lists
are cut short with a count of what was left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.registry import display_name
from bot.core.dashboard import Dashboard, SpendLine
from bot.core.format import format_price, format_usd
from bot.core.keys import KeyStatus
from bot.core.pricing import nano_to_usd
from bot.core.spend.texts import NOTICE_PERCENT, BudgetState
from bot.slack_app.text import escape

#: The Home tab's "Set the API key" button (admins): opens the key form.
KEY_ACTION = "routerbot_home_key"
SECTION_LIMIT = 2900
MAX_MODELS = 25

Block = dict[str, Any]


def home_view(
    dash: Dashboard, *, chart_file_id: str | None = None, key_origin: str = ""
) -> dict[str, Any]:
    """The ``home`` view for ``dash``. ``chart_file_id``: the uploaded chart (admins);
    ``key_origin``: where the key form confirms (the person's DM with routerbot)."""
    # No title block: Slack shows the app's name above its tabs.
    blocks: list[Block] = [
        _context(
            "Ask a model in the *Messages* tab, with `/chat` in any channel, or by mentioning "
            "@routerbot. Every answer ends with its model, tokens and cost."
        ),
        _header("Models you can use"),
        _section(_models(dash)),
        _header(f"Your spend in {dash.month}"),
        _section(_my_spend(dash)),
    ]
    admin = dash.admin
    if admin is not None:
        blocks += [
            {"type": "divider"},
            _header("Workspace (admins)"),
            _section(_keys(admin.keys, admin.keys_problem)),
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": KEY_ACTION,
                        "text": {"type": "plain_text", "text": "Set the API key"},
                        "style": "primary",
                        "value": key_origin,
                    }
                ],
            },
            _header("Monthly limits"),
            _section(_limits(admin.limits)),
            _header(f"Spend by channel in {dash.month}"),
            _section(
                _spend_list(admin.by_channel, admin.channels_total, _channel, admin.workspace)
            ),
            _header("Top spenders"),
            _section(_spend_list(admin.top_users, len(admin.top_users), _user, None)),
        ]
        if admin.chart is not None and chart_file_id is not None:
            # No block title: the chart carries its own, with the period and currency.
            blocks.append(
                {
                    "type": "image",
                    "slack_file": {"id": chart_file_id},
                    "alt_text": admin.chart.alt_text[:2000],
                }
            )
        elif admin.chart is not None:
            blocks.append(_context("The chart of spend per day could not be shown just now."))
    blocks.append(_context(f"Updated {dash.now:%Y-%m-%d %H:%M} UTC, each time you open this tab."))
    return {"type": "home", "blocks": blocks[:100]}


# -- pieces -----------------------------------------------------------------------------------


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _usd(nano: int) -> str:
    return format_usd(nano_to_usd(nano))


def _models(dash: Dashboard) -> str:
    if not dash.models:
        return (
            "No models are allowed in this workspace yet; an admin can add some with `/models add`."
        )
    lines = []
    for entry in dash.models[:MAX_MODELS]:
        price = (
            f"{format_price(entry.pricing.input_per_1m)} in · "
            f"{format_price(entry.pricing.output_per_1m)} out per 1M tokens"
        )
        mark = "  ⭐ *default*" if entry.is_default else ""
        lines.append(f"• `{escape(entry.model_id)}` — {price}{mark}")
    if len(dash.models) > MAX_MODELS:
        lines.append(f"• … and {len(dash.models) - MAX_MODELS} more: `/models`")
    if not any(e.is_default for e in dash.models):
        lines.append("_No default model is set; pick one with `--model`, or ask an admin._")
    return "\n".join(lines)


def _spent(line: SpendLine) -> str:
    cost = ("≈" if line.estimated else "") + _usd(line.cost_nano)
    chats = f"{line.chats:,} chat" + ("" if line.chats == 1 else "s")
    unknown = f", {line.unknown_chats} of unknown cost" if line.unknown_chats else ""
    return f"*{cost}* · {chats}{unknown}"


def _my_spend(dash: Dashboard) -> str:
    lines = [_spent(dash.mine)]
    if not dash.my_limits:
        lines.append("No monthly limit applies to your chats.")
    labels = {"workspace": "Workspace limit", "channel": "Limit here", "user": "Your limit"}
    for state in dash.my_limits:
        lines.append(_limit_line(state, labels[state.scope]))
    return "\n".join(lines)


def _limit_line(state: BudgetState, label: str) -> str:
    line = f"{label}: {_usd(state.spent_nano)} of {_usd(state.limit_nano)} ({state.percent}%)"
    if state.exhausted:
        return f"{line} — :no_entry: reached, new chats are refused until the month turns"
    if state.percent >= NOTICE_PERCENT:
        return f"{line} — :warning: over {NOTICE_PERCENT} %"
    return line


def _limits(limits: Sequence[BudgetState]) -> str:
    if not limits:
        return "No monthly limits are set. `/budget set <usd>` sets one for the workspace."
    lines = []
    order = {"workspace": 0, "channel": 1, "user": 2}
    for state in sorted(
        limits, key=lambda s: (order[s.scope], s.channel_id or "", s.user_id or "")
    ):
        if state.each_user and state.user_id is None:
            # The each-user limit itself counts nobody's spend: say what it allows.
            lines.append(f"• {_limit_label(state)}: {_usd(state.limit_nano)} a month")
        else:
            lines.append("• " + _limit_line(state, _limit_label(state)))
    return "\n".join(lines)


def _limit_label(state: BudgetState) -> str:
    if state.scope == "workspace":
        return "Workspace"
    if state.scope == "channel":
        return f"Channel {_channel(state.channel_id or '')}"
    if state.each_user:
        return "Each person without a limit of their own"
    return f"<@{state.user_id}>"


def _keys(keys: Sequence[KeyStatus], problem: str | None) -> str:
    if problem is not None:
        return f"*API key*: could not be checked ({problem}); try again in a minute."
    if not keys:
        return "*API key*: none is set, so chats are refused. Set one with the button below."
    lines = []
    for status in keys:
        name = display_name(status.provider)
        masked = status.masked if status.fallback else f"`{status.masked}`"
        text = f"*{name} key*: {masked}"
        info = status.info
        if status.problem:
            text += f" — could not be checked: {escape(status.problem)}"
        elif info is not None and info.limit is not None:
            left = info.limit_remaining if info.limit_remaining is not None else info.limit
            text += f" — {format_usd(left)} left of its {format_usd(info.limit)} limit"
        elif info is not None:
            text += " — no credit limit on the key"
        lines.append(text)
    return "\n".join(lines)


def _channel(channel_id: str) -> str:
    # Direct messages with routerbot are the person's own "channel" (SPEC §8).
    return "a DM with routerbot" if channel_id.startswith("D") else f"<#{channel_id}>"


def _user(user_id: str) -> str:
    return f"<@{user_id}>"


def _spend_list(
    lines: Sequence[SpendLine], total: int, label: Any, overall: SpendLine | None
) -> str:
    if not lines:
        return "Nothing spent yet this month."
    out = [f"• {label(line.key)}: {_spent(line)}" for line in lines]
    if total > len(lines):
        out.append(f"• … and {total - len(lines)} more")
    if overall is not None:
        out.append(f"*Workspace total: {_spent(overall).replace('*', '')}*")
    return "\n".join(out)
