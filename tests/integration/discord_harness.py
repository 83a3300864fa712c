"""Runs the real discord.py client against the fake Discord and the fake OpenRouter.

Everything is on loopback; the database is SQLite in the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.discord_app import build_client
from bot.discord_app.client import RouterbotClient
from bot.discord_app.connection import reset_endpoints
from bot.runtime import Runtime, build_runtime
from storage.crypto import generate_key
from tests.fakes.discord import FakeDiscord, FakeGuild, FakeInteraction, FakeUser
from tests.fakes.discord_payloads import ADMINISTRATOR, MANAGE_GUILD, MEMBER_PERMISSIONS
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter

OTHER_KEY = "sk-or-v1-" + "b" * 56
FOOTER_MARK = "\n-# "

ADMIN = FakeUser("ada", permissions=MEMBER_PERMISSIONS | MANAGE_GUILD)
OWNER = FakeUser("olga", permissions=MEMBER_PERMISSIONS | ADMINISTRATOR)
MEMBER = FakeUser("bob")


@dataclass
class Bot:
    discord: FakeDiscord
    openrouter: FakeOpenRouter
    settings: Settings
    runtime: Runtime
    client: RouterbotClient
    task: asyncio.Task[None]
    guild: FakeGuild
    admin: FakeUser
    member: FakeUser
    owner: FakeUser

    async def slash(
        self,
        command: str,
        /,
        *,
        user: FakeUser | None = None,
        guild: FakeGuild | None = None,
        thread: bool = False,
        **options: Any,
    ) -> FakeInteraction:
        guild = guild or self.guild
        channel = guild.thread if thread else guild.text_channel
        return await self.discord.slash(guild, channel, user or self.member, command, **options)

    async def finished(self, ix: FakeInteraction, *, timeout: float = 10.0) -> str:
        """Wait until the interaction's answer carries its footer; returns all its text."""
        await self.discord.wait_for(
            lambda: FOOTER_MARK in ix.text(), timeout=timeout, what="the answer's footer"
        )
        return ix.text()

    async def replied(self, ix: FakeInteraction, *, timeout: float = 10.0) -> str:
        """Wait for a non-chat command's reply (the deferred response edited, or a follow-up)."""

        def shown() -> str:
            original = ix.original or {}
            edited = original.get("edited_timestamp") and not original.get("deleted")
            if edited or ix.followups or (ix.response_type == 4):
                return ix.text()
            return ""

        return await self.discord.wait_for(shown, timeout=timeout, what="a reply")


def settings_for(
    tmp_path: Path, discord: FakeDiscord, openrouter: FakeOpenRouter, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'routerbot.db'}",
        "routerbot_secret_key": generate_key(),
        "routerbot_data_dir": tmp_path / "data",
        "routerbot_admins": "",
        "openrouter_base_url": openrouter.base_url,
        "openrouter_api_key": None,
        "fireworks_api_key": None,
        "discord_token": discord.token,
        "discord_api_base": discord.api_base,
        "discord_gateway_url": discord.gateway_url,
        "discord_shard_count": None,
        "discord_shard_ids": None,
        "discord_auto_shard": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    guilds: list[FakeGuild] | None = None,
    shards: int = 1,
    valid_keys: tuple[str, ...] = (DEFAULT_KEY, OTHER_KEY),
    discord: FakeDiscord | None = None,
    **overrides: Any,
) -> AsyncIterator[Bot]:
    """A connected bot. Pass a started ``discord`` fake to keep it across restarts."""
    async with contextlib.AsyncExitStack() as stack:
        if discord is None:
            discord = await stack.enter_async_context(FakeDiscord(guilds=guilds))
        openrouter = await stack.enter_async_context(FakeOpenRouter(valid_keys=valid_keys))
        settings = settings_for(tmp_path, discord, openrouter, **overrides)
        runtime, _ = await build_runtime(settings)
        # discord.py waits guild_ready_timeout (2 s) after the last GUILD_CREATE before READY.
        client = build_client(
            settings,
            runtime.service,
            runtime.dispatcher,
            runtime=runtime,
            guild_ready_timeout=0.05,
        )
        # ``start`` is login + connect. Logging in here, before the gateway task exists, is
        # what makes ``wait_until_ready`` legal: discord.py creates its ready event in login.
        # Since Python 3.12 ``asyncio.wait_for`` runs its awaitable in the calling task, so
        # nothing else would give a ``start`` task the chance to log in first; and a fake that
        # already has a ready session (a restart beside a running bot) does not wait either.
        task: asyncio.Task[None] | None = None
        try:
            await client.login(discord.token)
            task = asyncio.create_task(client.connect())
            await discord.wait_ready(shards)
            await asyncio.wait_for(client.wait_until_ready(), 10)
            yield Bot(
                discord=discord,
                openrouter=openrouter,
                settings=settings,
                runtime=runtime,
                client=client,
                task=task,
                guild=next(iter(discord.guilds.values())),
                admin=ADMIN,
                member=MEMBER,
                owner=OWNER,
            )
            # SPEC: every interaction is acknowledged within Discord's 3 s (the fake would
            # have refused a later callback with "Unknown interaction").
            late = [
                ix
                for ix in discord.interactions.values()
                if ix.responded_after is None or ix.responded_after >= 3.0
            ]
            assert not late, f"{len(late)} interaction(s) not acknowledged within 3 s"
        finally:
            await client.close()
            if task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(task, 5)
            await runtime.aclose()
            reset_endpoints()
