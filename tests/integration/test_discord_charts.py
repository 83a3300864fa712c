"""Discord /costs carries its chart: a PNG file on the interaction reply, shown by an embed
(``attachment://…``), decoded back to one bar per day with spend."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.core.replies import Invocation
from storage.models import utcnow
from tests.chart_reader import read_chart
from tests.fakes.discord import FakeInteraction
from tests.integration.discord_harness import Bot, running_bot
from tests.integration.spend_support import seed


def _ctx(bot: Bot) -> Invocation:
    channel = bot.guild.text_channel
    return Invocation("discord", str(bot.guild.id), str(channel.id), str(bot.member.id))


def _chart(bot: Bot, ix: FakeInteraction, message: dict[str, object]) -> bytes:
    [attachment] = message["attachments"]  # type: ignore[misc]
    assert attachment["content_type"] == "image/png"
    assert attachment["filename"].startswith("spend-") and attachment["filename"].endswith(".png")
    [embed] = message["embeds"]  # type: ignore[misc]
    assert embed["image"]["url"] == f"attachment://{attachment['filename']}"
    return bot.discord.uploads[attachment["id"]]


async def test_costs_reply_attaches_a_chart_of_spend_per_day(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        # Nothing spent in the period: the reply is text alone.
        quiet = await bot.slash("costs", user=bot.member)
        assert (await bot.replied(quiet)).startswith("No spend in this channel")
        assert quiet.original is not None and not quiet.original.get("attachments")

        now = utcnow()
        # Three days of this month with spend (today's twice), the chart's bars.
        days = [now - timedelta(days=min(2, now.day - 1)), now]
        await seed(bot.runtime, _ctx(bot), "0.80", when=days[0])
        await seed(bot.runtime, _ctx(bot), "0.20", when=now)
        await seed(bot.runtime, _ctx(bot), "0.20", when=now)
        ix = await bot.slash("costs", user=bot.member)
        await bot.discord.wait_for(
            lambda: ix.original and ix.original.get("attachments"), what="the chart"
        )
        assert ix.original is not None and not ix.ephemeral
        assert ix.original["content"].startswith("Spend in this channel for ")
        read = read_chart(_chart(bot, ix, ix.original))
        assert len(read.bars) == len({d.date() for d in days})
        if len(read.bars) == 2:
            # $0.80 then $0.40.
            assert abs(read.bars[1] * 2 - read.bars[0]) <= 3


async def test_workspace_costs_attach_the_chart_to_the_private_reply(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await seed(bot.runtime, _ctx(bot), "1.50", when=utcnow())
        ix = await bot.slash("costs", user=bot.admin, scope="workspace")
        await bot.discord.wait_for(
            lambda: ix.original and ix.original.get("attachments"), what="the chart"
        )
        assert ix.ephemeral
        assert ix.original is not None
        assert ix.original["content"].startswith("Spend in this workspace")
        assert len(read_chart(_chart(bot, ix, ix.original)).bars) == 1
