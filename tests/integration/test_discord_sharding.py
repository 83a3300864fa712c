"""Sharding from settings, gateway discovery, and running without the Message Content intent."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.discord_app import run_discord_async
from bot.discord_app.client import ShardedRouterbotClient
from bot.discord_app.connection import reset_endpoints
from bot.discord_app.followups import UNREADABLE
from bot.runtime import build_runtime
from tests.fakes.discord import FakeDiscord, FakeGuild
from tests.fakes.discord_payloads import snowflake
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.discord_harness import MEMBER, running_bot, settings_for


@pytest.fixture(autouse=True)
def _identify_at_once(monkeypatch):
    """discord.py waits 5 s between shard IDENTIFYs (Discord's identify rate limit);
    ``before_identify_hook`` is its documented override point."""

    async def no_wait(self, shard_id, *, initial=False):
        return None

    monkeypatch.setattr(ShardedRouterbotClient, "before_identify_hook", no_wait)


def _two_shard_guilds() -> list[FakeGuild]:
    return [FakeGuild("Zero", id=snowflake((0, 2))), FakeGuild("One", id=snowflake((1, 2)))]


def _syncs(discord: FakeDiscord) -> list[object]:
    return [c for c in discord.calls if c.method == "PUT" and c.path.endswith("/commands")]


async def test_one_process_runs_the_shards_it_is_given(tmp_path):
    zero, one = _two_shard_guilds()
    async with running_bot(
        tmp_path,
        guilds=[zero, one],
        shards=2,
        openrouter_api_key=DEFAULT_KEY,
        discord_shard_ids="0,1",
        discord_shard_count=2,
    ) as bot:
        shards = sorted(tuple(i["shard"]) for i in bot.discord.gateway.identifies)
        assert shards == [(0, 2), (1, 2)]
        for guild in (zero, one):
            ix = await bot.slash("chat", guild=guild, prompt=f"hi {guild.name}")
            assert (await bot.finished(ix)).startswith(f"echo: hi {guild.name}")
        assert len(_syncs(bot.discord)) == 1


async def test_a_process_without_shard_zero_does_not_sync(tmp_path):
    zero, one = _two_shard_guilds()
    async with running_bot(
        tmp_path, guilds=[zero, one], discord_shard_ids="1", discord_shard_count=2
    ) as bot:
        assert [i["shard"] for i in bot.discord.gateway.identifies] == [[1, 2]]
        assert _syncs(bot.discord) == []


async def test_auto_sharding_asks_the_api_for_the_gateway_and_shard_count(tmp_path):
    async with FakeDiscord(guilds=_two_shard_guilds(), recommended_shards=2) as discord:
        async with running_bot(
            tmp_path, discord=discord, shards=2, discord_auto_shard=True, discord_gateway_url=None
        ):
            assert [c.path for c in discord.calls].count("/gateway/bot") >= 1
            assert sorted(tuple(i["shard"]) for i in discord.gateway.identifies) == [(0, 2), (1, 2)]


async def test_without_the_message_content_intent_replies_must_mention_the_bot(tmp_path):
    guild = FakeGuild("Acme")
    async with (
        FakeOpenRouter() as openrouter,
        FakeDiscord(guilds=[guild], message_content_allowed=False) as discord,
    ):
        settings = settings_for(tmp_path, discord, openrouter, openrouter_api_key=DEFAULT_KEY)
        runtime, _ = await build_runtime(settings)
        task = asyncio.create_task(run_discord_async(settings, runtime))
        try:
            await discord.wait_ready()
            refused, accepted = discord.gateway.identifies[0], discord.gateway.identifies[-1]
            assert refused["intents"] & (1 << 15) and not accepted["intents"] & (1 << 15)

            ix = await discord.slash(guild, guild.text_channel, MEMBER, "chat", prompt="hi")
            await discord.wait_for(lambda: "\n-# " in ix.text(), what="the answer")
            channel = guild.text_channel
            await discord.post_message(
                guild, channel, MEMBER, "no ping", reply_to=ix.original, ping=False
            )
            unreadable = await discord.wait_for(
                lambda: [m for m in discord.messages.values() if m["content"] == UNREADABLE]
            )
            assert len(unreadable) == 1
            await discord.post_message(guild, channel, MEMBER, "with a ping", reply_to=ix.original)
            await discord.wait_for(
                lambda: any(
                    m["content"].startswith("echo: with a ping\n")
                    for m in discord.messages.values()
                )
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await runtime.aclose()
            reset_endpoints()
