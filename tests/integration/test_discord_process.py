"""``routerbot discord`` and ``routerbot run`` as real processes against the fake Discord."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from storage.crypto import generate_key
from tests.fakes.discord import FakeDiscord
from tests.fakes.openrouter import FakeOpenRouter
from tests.integration.discord_harness import MEMBER


@pytest.mark.parametrize("command", ["discord", "run"])
async def test_process_serves_commands_and_stops_on_sigterm(tmp_path, command):
    async with FakeDiscord() as discord, FakeOpenRouter() as openrouter:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'rb.db'}",
            "ROUTERBOT_SECRET_KEY": generate_key(),
            "ROUTERBOT_DATA_DIR": str(tmp_path / "data"),
            "OPENROUTER_BASE_URL": openrouter.base_url,
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_BASE": discord.api_base,
            "DISCORD_GATEWAY_URL": discord.gateway_url,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            command,
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await discord.wait_ready(timeout=20)
            guild = next(iter(discord.guilds.values()))
            ix = await discord.slash(guild, guild.text_channel, MEMBER, "help")
            await discord.wait_for(lambda: "/chat" in ix.text(), what="the help text")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
        assert discord.token.encode() not in err
