"""`routerbot console` fed hostile input: bytes that are not UTF-8, pasted keys with invisible
characters, amounts with commas. Each answer is one line; nothing prints a traceback."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter, Fault
from tests.integration.test_console import console_env

NOT_A_KEY = "That does not look like an API key; nothing was stored."


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


async def console(env: dict[str, str], stdin: bytes, cwd: Path) -> tuple[str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode == 0, err.decode()
    text, errors = out.decode(), err.decode()
    assert "Traceback" not in text + errors
    return text, errors


def ledger(tmp_path: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(tmp_path / "console.db") as db:
        return db.execute("SELECT outcome, error_kind FROM usage_record ORDER BY id").fetchall()


async def test_a_byte_that_is_not_utf8_is_replaced_and_the_chat_goes_through(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(
        tmp_path, fake, OPENROUTER_API_KEY=DEFAULT_KEY, ROUTERBOT_SECRET_KEY=generate_key()
    )
    out, _ = await console(env, b"/chat caf\xe9\nna\xefve \x00follow-up\n", tmp_path)
    assert "echo: caf\ufffd\n" in out
    assert "echo: na\ufffdve follow-up\n" in out
    assert "could not read" not in out
    sent = [r.json["messages"][-1]["content"] for r in fake.chat_requests]
    assert sent == ["caf\ufffd", "na\ufffdve follow-up"]
    assert [outcome for outcome, _ in ledger(tmp_path)] == ["ok", "ok"]


@pytest.mark.parametrize(
    "pasted",
    [
        f"{DEFAULT_KEY}\u200b",
        f"\u201c{DEFAULT_KEY}\u201d",
        f"`{DEFAULT_KEY}`",
        f"\ufeff'{DEFAULT_KEY}'",
    ],
)
async def test_a_key_pasted_with_invisible_characters_or_quotes_is_stored_clean(
    fake: FakeOpenRouter, tmp_path: Path, pasted: str
) -> None:
    env = console_env(tmp_path, fake, ROUTERBOT_SECRET_KEY=generate_key())
    out, _ = await console(env, f"/apikey set {pasted}\n/chat hi\n".encode(), tmp_path)
    assert "Saved the OpenRouter key sk-or-v1-" in out
    assert "echo: hi" in out
    assert fake.chat_requests[-1].headers["Authorization"] == f"Bearer {DEFAULT_KEY}"


async def test_a_key_a_header_cannot_carry_is_refused_in_one_line(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(tmp_path, fake, ROUTERBOT_SECRET_KEY=generate_key())
    out, _ = await console(env, "/apikey set sk-or-v1-caf\u00e9-key\n".encode(), tmp_path)
    assert out == f"{NOT_A_KEY}\n"
    assert not [r for r in fake.requests if r.path.endswith("/key")]


async def test_provider_retries_stay_off_the_console_screen(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(
        tmp_path, fake, OPENROUTER_API_KEY=DEFAULT_KEY, ROUTERBOT_SECRET_KEY=generate_key()
    )
    fake.script(Fault.http(502))
    out, err = await console(env, b"/chat hello\n", tmp_path)
    assert len(fake.chat_requests) == 2  # the 502 was retried
    assert "echo: hello\n" in out
    assert "stamina" not in err and "retry" not in err.lower()


async def test_a_workspace_or_login_name_that_is_not_utf8_is_cleaned(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(
        tmp_path, fake, OPENROUTER_API_KEY=DEFAULT_KEY, ROUTERBOT_SECRET_KEY=generate_key()
    )
    env["LOGNAME"] = "b\udcefb"  # the byte 0xef, as os.environ carries it
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        "--workspace",
        b"caf\xe9",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(b"/models\n/chat hi\n/costs\n"), 60)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    text = out.decode()
    assert "`anthropic/claude-3.5-sonnet`" in text and "echo: hi" in text
    assert "b\ufffdb" in text  # /costs by user
    with sqlite3.connect(tmp_path / "console.db") as db:
        assert db.execute("SELECT external_id FROM workspace").fetchall() == [("caf\ufffd",)]
