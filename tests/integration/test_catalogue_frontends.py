"""The catalogue through routerbot's doors: ``routerbot models sync`` as an operator runs it,
``/models search`` and ``/models info`` from a Slack member, and Discord's suggestions for
``/models add`` and its marks on models no longer served."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import DEFAULT_MODEL_SETTINGS
from bot.core.catalogue.sync import sync_allowlists
from bot.core.replies import Invocation
from bot.runtime import build_runtime
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.openrouter_catalogue import LATE_2026_MODELS
from tests.integration.discord_harness import running_bot
from tests.integration.slack_support import SlackHarness, slack_harness
from tests.integration.test_catalogue import settings_for

REPO = Path(__file__).resolve().parents[2]


# ---- routerbot models sync ---------------------------------------------------------------------


async def _routerbot(env: dict[str, str], *args: str) -> tuple[str, str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode(), err.decode(), proc.returncode or 0


def _env(tmp_path: Path, base_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENROUTER_", "ROUTERBOT_", "DATABASE_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'rb.db'}",
        OPENROUTER_BASE_URL=base_url,
        ROUTERBOT_DATA_DIR=str(tmp_path / "data"),
        ROUTERBOT_MODEL_SETTINGS=str(DEFAULT_MODEL_SETTINGS),
    )
    return env


async def test_models_sync_prints_what_changed(tmp_path: Path) -> None:
    async with FakeOpenRouter(models=LATE_2026_MODELS) as fake:
        rt, _ = await build_runtime(settings_for(tmp_path, fake.base_url))
        try:
            for ctx in (
                Invocation("console", "acme", "console", "op"),
                Invocation("slack", "T1", "C1", "U1"),
            ):
                await anext(rt.dispatcher.run_text(ctx, "/models"))
        finally:
            await rt.aclose()
        fake.catalogue.set_price("openai/gpt-5-mini", prompt="0.0000003", completion="0.0000024")
        fake.catalogue.retire("deepseek/deepseek-v4-flash")
        fake.catalogue.expire("google/gemini-3.5-flash", "2026-06-01")
        calls = fake.catalogue.list_calls
        env = _env(tmp_path, fake.base_url)

        out, err, code = await _routerbot(env, "models", "sync", "--workspace", "console:acme")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].startswith(f"Catalogue: {len(LATE_2026_MODELS) - 1} models from ")
        assert lines[1:] == [
            "console:acme  deepseek/deepseek-v4-flash  no longer available (gone from the catalogue)",
            "console:acme  openai/gpt-5-mini           price $0.25 / $2.00 → $0.30 / $2.40 per 1M tokens (in / out)",
            "console:acme  google/gemini-3.5-flash     no longer available (past its expiration date)",
            "3 changes in 1 workspace.",
        ]
        assert fake.catalogue.list_calls == calls + 1  # one GET /models for the run

        out, err, code = await _routerbot(env, "models", "sync")
        assert code == 0, err
        assert out.splitlines()[1:] == [
            "slack:T1  deepseek/deepseek-v4-flash  no longer available (gone from the catalogue)",
            "slack:T1  openai/gpt-5-mini           price $0.25 / $2.00 → $0.30 / $2.40 per 1M tokens (in / out)",
            "slack:T1  google/gemini-3.5-flash     no longer available (past its expiration date)",
            "3 changes in 1 workspace.",
        ]
        out, err, code = await _routerbot(env, "models", "sync")
        assert out.splitlines()[1] == (
            "No changes: every allowlisted model's price and availability match the catalogue."
        )
        out, err, code = await _routerbot(env, "models", "sync", "--workspace", "slack:T9")
        assert code == 1 and "no workspace 'slack:T9'" in err

    env["OPENROUTER_BASE_URL"] = "http://127.0.0.1:9/api/v1"
    out, err, code = await _routerbot(env, "models", "sync")
    assert code == 1 and "could not be reached; nothing changed" in err


# ---- Slack ---------------------------------------------------------------------------------------


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}") as harness:
        yield harness


async def test_a_slack_member_searches_and_asks_for_info(h: SlackHarness) -> None:
    sent = await h.command("/models", "search gpt", user="U1")
    found = h.reply_text(sent)
    assert "• `openai/gpt-4o-mini` $0.15 / $0.60 · 128K context · allowed here" in found
    assert all(r.get("response_type") != "in_channel" for r in h.replies(sent))  # private
    sent = await h.command("/models", "search nothing-of-the-sort", user="U1")
    assert h.reply_text(sent) == (
        "No model in OpenRouter's catalogue matches `nothing-of-the-sort`; try fewer or "
        "shorter words."
    )
    sent = await h.command("/models", "info anthropic/claude-3.5-sonnet", user="U1")
    info = h.reply_text(sent)
    assert info.startswith("`anthropic/claude-3.5-sonnet` — Anthropic: Claude 3.5 Sonnet")
    assert "• context: 200,000 tokens" in info
    assert "• on this workspace's allowlist (the default)" in info
    sent = await h.command("/routerbot", "help", user="U1")
    assert "/models search <words> · /models info <id>" in h.reply_text(sent)


# ---- Discord -------------------------------------------------------------------------------------


async def test_discord_suggests_catalogue_models_and_marks_retired_ones(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        ix = await bot.slash("models search", user=bot.member, words="claude")
        assert "`anthropic/claude-3.5-sonnet` $3.00 / $15.00" in await bot.replied(ix)
        assert ix.ephemeral
        choices = await bot.discord.autocomplete(
            bot.guild, bot.guild.text_channel, bot.admin, "models add", focused="id", id="gpt"
        )
        assert [(c["name"], c["value"]) for c in choices] == [
            ("openai/gpt-4o-mini · $0.15 / $0.60 per 1M", "openai/gpt-4o-mini")
        ]
        everything = await bot.discord.autocomplete(
            bot.guild, bot.guild.text_channel, bot.admin, "models add", focused="id", id=""
        )
        assert 0 < len(everything) <= 25 and all(len(c["name"]) <= 100 for c in everything)

        bot.openrouter.catalogue.retire("anthropic/claude-3.5-sonnet")
        catalogue = bot.runtime.catalogue
        assert catalogue is not None
        await catalogue.refresh()
        await sync_allowlists(bot.runtime.store, catalogue)
        bot.client.bridge.models.invalidate(str(bot.guild.id))
        chat_choices = await bot.discord.autocomplete(
            bot.guild, bot.guild.text_channel, bot.member, "chat", focused="model", model="claude"
        )
        assert [c["name"] for c in chat_choices] == [
            "anthropic/claude-3.5-sonnet (default) (no longer available)"
        ]
        ix = await bot.slash("models info", user=bot.member, id="anthropic/claude-3.5-sonnet")
        assert (await bot.replied(ix)).startswith(
            "`anthropic/claude-3.5-sonnet` is no longer available at OpenRouter;"
        )
