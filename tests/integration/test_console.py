"""`routerbot console` as a user runs it: a real process, stdin lines, a fake OpenRouter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter, Fault
from tests.fixtures import PINNED_MODEL_SETTINGS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


def console_env(tmp_path: Path, fake: FakeOpenRouter, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENROUTER_", "ROUTERBOT_", "DATABASE_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'console.db'}",
        OPENROUTER_BASE_URL=fake.base_url,
        ROUTERBOT_DATA_DIR=str(tmp_path / "data"),
        ROUTERBOT_MODEL_SETTINGS=str(PINNED_MODEL_SETTINGS),
    )
    env.update(extra)
    return env


async def run_console(
    env: dict[str, str], lines: list[str], cwd: Path, *args: str
) -> tuple[str, str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate("\n".join(lines).encode() + b"\n"), 60)
    return out.decode(), err.decode(), proc.returncode or 0


async def test_new_user_flow(fake: FakeOpenRouter, tmp_path: Path) -> None:
    env = console_env(tmp_path, fake)
    out, err, code = await run_console(
        env,
        [
            "/models",
            f"/apikey set {DEFAULT_KEY}",
            "/chat --model openai/gpt-4o-mini hello there",
            "and a follow-up",
            "/costs",
            "/frobnicate",
        ],
        tmp_path,
        "--workspace",
        "acme",
    )
    assert code == 0, err
    assert "`anthropic/claude-3.5-sonnet`" in out
    assert "Saved the OpenRouter key sk-or-v1-" in out
    assert "echo: hello there\n— openai/gpt-4o-mini · " in out
    assert "echo: and a follow-up" in out
    assert "Spend in this channel" in out and "2 chats" in out
    assert "Unknown command `/frobnicate`" in out
    # The key typed on stdin is never echoed back, nor logged.
    assert DEFAULT_KEY not in out and DEFAULT_KEY not in err
    # No key configured: the console made one and said so.
    assert (tmp_path / "data" / "secret.key").exists()
    assert "secret.key" in err
    # The follow-up carried the first turn.
    assert [m["role"] for m in fake.chat_requests[-1].json["messages"]] == [
        "user",
        "assistant",
        "user",
    ]
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("console.db*"))
    assert DEFAULT_KEY.encode() not in db_bytes


async def test_provider_failure_leaves_console_working(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(
        tmp_path, fake, OPENROUTER_API_KEY=DEFAULT_KEY, ROUTERBOT_SECRET_KEY=generate_key()
    )
    fake.script(Fault.http(402))
    fake.script(Fault.drop(after=2))
    out, err, code = await run_console(
        env, ["/chat first", "/chat second one two three", "/chat third"], tmp_path
    )
    assert code == 0, err
    lines = out.splitlines()
    assert any("out of credits" in line and "Nothing was charged" in line for line in lines)
    assert any("cut off" in line for line in lines)
    assert "echo: third" in out
    assert "Traceback" not in out + err


async def test_broken_settings_file_stops_start_up_naming_the_field(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    bad = tmp_path / "models.json"
    bad.write_text(
        '{"version": 1, "pricing": {"openrouter": {"a/b": {"inputCostPer1M": -1, "outputCostPer1M": 1}}}}'
    )
    env = console_env(tmp_path, fake, ROUTERBOT_MODEL_SETTINGS=str(bad))
    out, err, code = await run_console(env, ["/models"], tmp_path)
    assert code == 2
    assert "pricing.openrouter.a/b.inputCostPer1M" in err


def test_console_does_not_import_platform_libraries() -> None:
    code = (
        "import sys, bot.cli, bot.console, bot.runtime; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('slack_bolt', 'slack_sdk', 'discord')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_costs_prints_a_text_chart_of_spend_per_day(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(
        tmp_path, fake, OPENROUTER_API_KEY=DEFAULT_KEY, ROUTERBOT_SECRET_KEY=generate_key()
    )
    out, err, code = await run_console(env, ["/costs", "/chat hello", "/costs today"], tmp_path)
    assert code == 0, err
    assert "No spend in this channel" in out  # no chart for a period without spend
    head = out.index("Spend per day in this channel, today (")
    assert "(USD per UTC day, total $" in out[head:]
    # One line per day: today's, with its bar and amount.
    [day] = [line for line in out[head:].splitlines()[1:] if line[:2].isdigit()]
    assert "█" in day and "$" in day
    assert "matplotlib" not in err
