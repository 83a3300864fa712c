"""Spend charts: the daily series read from the rollup (both backends), the chart a /costs reply
carries, the PNG decoded back to one bar per day with spend, and the text chart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.charts import render_png, spend_chart, text_chart
from bot.core.pricing import usd_to_nano
from bot.core.replies import CostsReply, Invocation
from bot.runtime import Runtime
from storage import stores
from storage.db import Database
from storage.models import UsageRecord
from tests.chart_reader import read_chart
from tests.fakes.openrouter import FakeOpenRouter
from tests.integration.spend_support import ADMIN, MEMBER, Clock, run, seed, spend_runtime

NOW = datetime(2026, 3, 20, 15, 30)


def _row(ws_id: int, channel: str, usd: str, when: datetime, model: str = "a/m") -> UsageRecord:
    return UsageRecord(
        workspace_id=ws_id,
        channel_id=channel,
        user_id="U1",
        provider="openrouter",
        model_requested=model,
        prompt_tokens=1,
        completion_tokens=1,
        cost_nano=usd_to_nano(Decimal(usd)),
        cost_source="reported",
        outcome="ok",
        created_at=when,
    )


async def test_daily_spend_sums_models_per_day_for_a_channel_or_the_workspace(
    db: Database,
) -> None:
    async with db.session() as session:
        ws, _ = await stores.get_or_create_workspace(session, platform="slack", external_id="T")
        other, _ = await stores.get_or_create_workspace(session, platform="slack", external_id="X")
        assert ws.id is not None and other.id is not None
        for record in [
            _row(ws.id, "C1", "1.00", datetime(2026, 3, 1, 0, 0)),
            _row(ws.id, "C1", "0.50", datetime(2026, 3, 1, 23, 59), model="b/m"),
            _row(ws.id, "C2", "2.00", datetime(2026, 3, 3, 12)),
            _row(ws.id, "C1", "9.00", datetime(2026, 2, 28, 12)),  # before the window
            _row(other.id, "C1", "7.00", datetime(2026, 3, 1, 12)),  # another tenant
        ]:
            await stores.record_usage(session, record=record)
    nano = usd_to_nano
    async with db.session() as session:
        channel = await stores.daily_spend(
            session,
            workspace_id=ws.id,
            channel_id="C1",
            first_day=date(2026, 3, 1),
            end_day=date(2026, 3, 21),
        )
        workspace = await stores.daily_spend(
            session, workspace_id=ws.id, channel_id=None, first_day=None, end_day=None
        )
    assert channel == [(date(2026, 3, 1), nano(Decimal("1.50")))]
    assert workspace == [
        (date(2026, 2, 28), nano(Decimal(9))),
        (date(2026, 3, 1), nano(Decimal("1.50"))),
        (date(2026, 3, 3), nano(Decimal(2))),
    ]


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with (
        FakeOpenRouter() as fake,
        spend_runtime(f"sqlite:///{tmp_path / 'rb.db'}", fake, tmp_path, Clock(NOW)) as runtime,
    ):
        yield runtime


async def test_costs_reply_carries_a_chart_of_every_day_of_the_period(rt: Runtime) -> None:
    await seed(rt, MEMBER, "1.25", when=datetime(2026, 3, 3, 9))
    await seed(rt, MEMBER, "0.75", when=datetime(2026, 3, 3, 18))
    await seed(rt, MEMBER, "0.40", when=datetime(2026, 3, 14, 9))
    await seed(rt, MEMBER, "2.00", when=NOW)
    await seed(rt, MEMBER, "5.00", when=datetime(2026, 2, 27))  # last month: not charted
    [reply] = await run(rt, MEMBER, "/costs")
    assert isinstance(reply, CostsReply) and reply.chart is not None
    chart = reply.chart
    assert chart.period == "March 2026 (calendar month, UTC)" and chart.currency == "USD"
    assert [d for d, _ in chart.days] == [date(2026, 3, 1) + timedelta(i) for i in range(20)]
    assert chart.total_nano == usd_to_nano(Decimal("4.40"))
    assert chart.spend_days == 3
    assert reply.text.startswith("Spend in this channel for March 2026")

    read = read_chart(render_png(chart))
    assert (read.width, read.height) == (960, 510)
    assert len(read.bars) == 3, read.bars
    # $2.00, $0.40 and $2.00: the heights keep their proportions.
    assert read.bars[0] == pytest.approx(read.bars[2], abs=1)
    assert read.bars[1] == pytest.approx(read.bars[0] * 0.2, abs=2)

    # The workspace scope charts every channel; a period without spend has no chart.
    await seed(rt, MEMBER, "1.00", when=datetime(2026, 3, 5, 9), channel="random")
    [workspace] = await run(rt, ADMIN, "/costs workspace")
    assert isinstance(workspace, CostsReply) and workspace.chart is not None
    assert workspace.chart.spend_days == 4
    assert len(read_chart(render_png(workspace.chart)).bars) == 4
    [today] = await run(rt, Invocation("console", "acme", "quiet", "bob"), "/costs")
    assert isinstance(today, CostsReply) and today.chart is None


async def test_all_time_starts_at_the_first_day_with_spend(rt: Runtime) -> None:
    await seed(rt, MEMBER, "0.10", when=datetime(2026, 3, 10))
    await seed(rt, MEMBER, "0.20", when=datetime(2026, 3, 12))
    [reply] = await run(rt, MEMBER, "/costs all")
    assert isinstance(reply, CostsReply) and reply.chart is not None
    assert reply.chart.days[0] == (date(2026, 3, 10), usd_to_nano(Decimal("0.10")))
    assert reply.chart.days[-1] == (date(2026, 3, 20), 0)


def test_spend_chart_fills_gaps_and_declines_an_empty_period() -> None:
    first, last = date(2026, 3, 1), date(2026, 3, 4)
    assert spend_chart([], first_day=first, last_day=last, title="t", period="p") is None
    assert spend_chart([(first, 0)], first_day=first, last_day=last, title="t", period="p") is None
    chart = spend_chart(
        [(date(2026, 3, 3), 5)], first_day=first, last_day=last, title="t", period="p"
    )
    assert chart is not None
    assert chart.days == (
        (date(2026, 3, 1), 0),
        (date(2026, 3, 2), 0),
        (date(2026, 3, 3), 5),
        (date(2026, 3, 4), 0),
    )
    assert chart.filename == "spend-20260301-20260304.png"
    assert "highest $0.0000000050 on 2026-03-03" in chart.alt_text


def test_text_chart_draws_a_bar_per_day_and_a_sparkline_for_long_periods() -> None:
    usd = usd_to_nano
    days = [(date(2026, 3, 1), usd(Decimal(2))), (date(2026, 3, 3), usd(Decimal("0.5")))]
    chart = spend_chart(days, first_day=None, last_day=date(2026, 3, 3), title="Spend", period="p")
    assert chart is not None
    assert text_chart(chart, width=8).splitlines() == [
        "Spend, p (USD per UTC day, total $2.50):",
        "03-01 ████████ $2.00",
        "03-02",
        "03-03 ██       $0.5000",
    ]
    long = spend_chart(
        [(date(2026, 1, 1) + timedelta(days=i), usd(Decimal(i % 5))) for i in range(90)],
        first_day=None,
        last_day=date(2026, 3, 31),
        title="Spend",
        period="all time",
    )
    assert long is not None
    lines = text_chart(long).splitlines()
    assert len(lines) == 1 + 2 + 1 and len(lines[1]) == 60
    assert lines[-1] == "2026-01-02 … 2026-03-31, highest $4.00"


def test_the_console_does_not_import_matplotlib_to_start() -> None:
    code = (
        "import sys, bot.console, bot.core.dispatch, bot.core.charts; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
