"""``routerbot console --user/--channel/--member``: every governance rule tried from a
terminal, as real processes sharing one database (SPEC §7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.test_console import console_env, run_console


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


async def test_admin_and_member_consoles_share_the_rules(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(tmp_path, fake, ROUTERBOT_SECRET_KEY=generate_key())

    async def console(lines: list[str], *args: str) -> str:
        out, err, code = await run_console(env, lines, tmp_path, "--workspace", "acme", *args)
        assert code == 0, err
        assert "Traceback" not in out + err
        return out

    admin = await console(
        [
            f"/apikey set {DEFAULT_KEY}",
            "/budget set 0.01 --user bob",
            "/prompt set --channel Be brief.",
            "/access user eve off",
            "/models default openai/gpt-4o-mini --channel",
        ],
        "--user",
        "alice",
        "--channel",
        "team",
    )
    assert "bob's monthly budget is now $0.0100" in admin
    assert "Saved the system prompt of this channel" in admin

    member = await console(
        ["/budget set 5", "/audit", "/chat hello", "/costs me", "/prompt"],
        "--user",
        "bob",
        "--channel",
        "team",
        "--member",
    )
    assert member.count("Only workspace admins can") == 2
    assert "echo: hello\n— openai/gpt-4o-mini · " in member
    assert "Your monthly limit (your own limit, " in member
    assert "> Be brief." in member
    sent = fake.chat_requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert isinstance(sent["max_completion_tokens"], int)  # bob's limit caps his answers

    eve = await console(["/chat hello"], "--user", "eve", "--member")
    assert "Your chats are turned off in this workspace" in eve

    log = await console(["/audit"], "--user", "alice")
    assert "alice · access.user · eve · on → off" in log
    assert "alice · budget.set · bob · — → $0.0100" in log
    assert "models.default · channel #team · — → openai/gpt-4o-mini" in log
