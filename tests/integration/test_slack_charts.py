"""Slack /costs carries its chart, uploaded with the external upload flow (getUploadURLExternal,
POST the bytes, completeUploadExternal) and decoded back to one bar per day with spend: shared
into the channel beside a public reply, shown privately with a private one, and shown through
the reply's response_url where the bot is not in the channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.replies import Invocation
from storage.models import utcnow
from tests.chart_reader import read_chart
from tests.integration.slack_support import SlackHarness, slack_harness
from tests.integration.spend_support import seed

KEY = "sk-or-v1-test-key-one-0001"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        yield harness


async def _spend(h: SlackHarness, channel: str = "C1") -> int:
    """Spend on two or three days of this month; returns how many days."""
    now = utcnow()
    days = {now.date(), (now - timedelta(days=min(2, now.day - 1))).date()}
    for day in sorted(days):
        when = now.replace(year=day.year, month=day.month, day=day.day)
        await seed(h.runtime, Invocation("slack", "T1", channel, "U1"), "0.50", when=when)
    await seed(h.runtime, Invocation("slack", "T1", channel, "U2"), "0.25", when=now)
    return len(days)


def _image_block(payload: dict[str, Any]) -> dict[str, Any]:
    [block] = [b for b in payload.get("blocks") or [] if b.get("type") == "image"]
    return block


async def test_public_costs_share_the_chart_into_the_channel(h: SlackHarness) -> None:
    days = await _spend(h)
    sent = await h.command("/costs", "month")
    [reply] = h.replies(sent)
    assert reply["response_type"] == "in_channel"
    assert reply["text"].startswith("Spend in this channel for ")

    [start] = h.slack.calls_to("files.getUploadURLExternal")
    [complete] = h.slack.calls_to("files.completeUploadExternal")
    assert complete.args["channel_id"] == "C1" and complete.error is None
    [chart] = [f for f in h.slack.files.values() if f.completed]
    assert chart.filename.endswith(".png") and chart.length == int(start.args["length"])
    assert chart.alt_text and "Spend per day in this channel" in chart.alt_text
    [shared] = [m for m in h.slack.posted("C1") if m.files]
    assert shared.files == [chart.id]
    read = read_chart(chart.data or b"")
    assert len(read.bars) == days
    # Today's bar ($0.75) is taller than the other day's ($0.50).
    if days == 2:
        assert read.bars[-1] > read.bars[0]


async def test_private_costs_show_the_chart_only_to_the_admin(h: SlackHarness) -> None:
    await _spend(h)
    await _spend(h, channel="C2")
    sent = await h.command("/costs", "workspace", user="UADMIN")
    text, image = h.replies(sent)
    assert text["response_type"] == image["response_type"] == "ephemeral"
    [complete] = h.slack.calls_to("files.completeUploadExternal")
    assert "channel_id" not in complete.args, "a private chart is never shared into a channel"
    block = _image_block(image)
    chart = h.slack.files[block["slack_file"]["id"]]
    assert chart.completed and chart.channel is None
    assert "Spend per day in this workspace" in block["alt_text"]
    assert read_chart(chart.data or b"").bars


async def test_a_channel_without_the_bot_gets_the_chart_through_the_reply(
    h: SlackHarness,
) -> None:
    await _spend(h, channel="C9")
    h.slack.not_in_channel.add("C9")
    sent = await h.command("/costs", "", channel="C9")
    text, image = h.replies(sent)
    assert text["response_type"] == image["response_type"] == "in_channel"
    chart = h.slack.files[_image_block(image)["slack_file"]["id"]]
    assert chart.completed and chart.channel is None
    refused, finished = h.slack.calls_to("files.completeUploadExternal")
    assert refused.error == "not_in_channel" and finished.error is None


async def test_no_spend_no_chart(h: SlackHarness) -> None:
    sent = await h.command("/costs", "today")
    assert h.reply_text(sent).startswith("No spend in this channel")
    assert not h.slack.calls_to("files.getUploadURLExternal")
