"""``routerbot costs``: a workspace's or channel's spend as tables, with its budgets."""

from __future__ import annotations

from datetime import datetime
from typing import IO

from bot.core.commands import Period
from bot.core.deps import utcnow
from bot.core.format import format_usd
from bot.core.periods import period_window
from bot.core.ports import Store, UsageTotals
from bot.core.pricing import nano_to_usd
from bot.core.spend.guard import budget_states
from bot.core.spend.texts import render_budget_states
from bot.ops.common import resolve_workspace, table, workspace_name

HEADERS = ["", "cost", "chats", "failed", "unknown", "prompt", "cached", "completion"]


def _usd(totals: UsageTotals) -> str:
    text = format_usd(nano_to_usd(totals.cost_nano))
    return f"≈{text}" if totals.computed_cost_chats else text


def _totals_row(key: str, t: UsageTotals) -> list[str]:
    return [
        key,
        _usd(t),
        f"{t.chats:,}",
        f"{t.failed:,}",
        f"{t.unknown_cost_chats:,}",
        f"{t.prompt_tokens:,}",
        f"{t.cached_tokens:,}",
        f"{t.completion_tokens:,}",
    ]


async def write_costs(
    store: Store,
    out: IO[str],
    *,
    workspace: str,
    channel: str | None,
    period: Period,
    now: datetime | None = None,
) -> None:
    """The ``/costs`` report as tables: totals, by channel, by model, by user, budgets."""
    now = now or utcnow()
    window = period_window(period, now)
    async with store.transaction() as tx:
        ws = await resolve_workspace(tx, workspace)
        summary = await tx.usage.summarize(
            ws.id, channel_id=channel, since=window.since, until=window.until
        )
        states = await budget_states(tx, workspace_id=ws.id, channel_id=channel, now=now)
    where = workspace_name(ws) + (f" channel {channel}" if channel else "")
    print(f"Spend in {where} for {window.label}", file=out)
    numeric = set(range(1, len(HEADERS)))
    print("", file=out)
    for line in table(HEADERS, [_totals_row("total", summary.totals)], numeric):
        print(line, file=out)
    sections = [
        ("channel", summary.by_channel),
        ("model", summary.by_model),
        ("user", summary.by_user),
    ]
    for title, groups in sections:
        if channel and title == "channel":
            continue
        print("", file=out)
        rows = [_totals_row(key, totals) for key, totals in groups]
        for line in table([f"by {title}", *HEADERS[1:]], rows, numeric):
            print(line, file=out)
    if summary.totals.computed_cost_chats:
        print(
            "\n≈: includes costs computed from list prices (no provider-reported cost), or "
            "estimated for chats cut short that the provider kept no record of.",
            file=out,
        )
    print("", file=out)
    print(render_budget_states(states, now=now, channel_id=channel, format_channel=str), file=out)
