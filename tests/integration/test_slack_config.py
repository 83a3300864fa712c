"""Slack configuration and process level: modes, the manifest, the de-duplication store, and
``routerbot run`` / ``routerbot slack`` as real processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.core.errors import ConfigurationError
from bot.serve import configured_front_ends
from bot.slack_app import slack_mode
from bot.slack_app.app import BOT_SCOPES
from storage.db import Database
from storage.events import prune_events
from storage.models import utcnow
from storage.sql_store import SqlStore
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import FakeSlack

MANIFEST = Path(__file__).resolve().parents[2] / "bot" / "slack_app" / "manifest.yaml"


def settings(**values: object) -> Settings:
    base: dict[str, object] = {
        "slack_bot_token": None,
        "slack_signing_secret": None,
        "slack_app_token": None,
        "slack_client_id": None,
        "slack_client_secret": None,
        "discord_token": None,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg, arg-type]


def test_modes() -> None:
    secret = SecretStr("s")
    single = slack_mode(settings(slack_bot_token=SecretStr("xoxb-1"), slack_signing_secret=secret))
    assert (single.oauth, single.socket) == (False, False)
    oauth = slack_mode(
        settings(slack_client_id="1.2", slack_client_secret=secret, slack_signing_secret=secret)
    )
    assert (oauth.oauth, oauth.socket) == (True, False)
    socket = slack_mode(
        settings(slack_bot_token=SecretStr("xoxb-1"), slack_app_token=SecretStr("xapp-1"))
    )
    assert (socket.oauth, socket.socket) == (False, True)


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"slack_bot_token": SecretStr("xoxb-1")}, "SLACK_SIGNING_SECRET"),
        ({"slack_client_id": "1.2", "slack_client_secret": SecretStr("s")}, "SLACK_SIGNING_SECRET"),
    ],
)
def test_missing_configuration_names_the_variable(values: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        slack_mode(settings(**values))


def test_run_with_nothing_configured_says_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.serve import run_all

    assert configured_front_ends(settings()) == []
    assert run_all(settings()) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET" in err
    assert "DISCORD_TOKEN" in err


def test_manifest_matches_the_code() -> None:
    text = MANIFEST.read_text()
    commands = re.findall(r"- command: (/\w+)", text)
    assert sorted(commands) == sorted(
        [
            "/chat",
            "/models",
            "/apikey",
            "/costs",
            "/budget",
            "/prompt",
            "/access",
            "/audit",
            "/routerbot",
        ]
    )
    bot_scopes = re.search(r"bot:\n((?:\s+- [\w:.]+\n)+)", text)
    assert bot_scopes is not None
    assert sorted(re.findall(r"- ([\w:.]+)", bot_scopes.group(1))) == sorted(BOT_SCOPES)
    for event in ("app_mention", "message.channels", "message.groups"):
        assert f"- {event}\n" in text
    assert text.count("/slack/events") == 11  # nine commands, events, interactivity
    # The commands that name people ask Slack for <@U…|name> references.
    for command in ("/budget", "/access"):
        block = text.split(f"- command: {command}\n", 1)[1].split("- command:", 1)[0]
        assert "should_escape: true" in block, command


async def test_claim_event_is_race_safe_and_pruned(db: Database) -> None:
    store = SqlStore(db)

    async def claim() -> bool:
        return await store.claim_event("slack", "message:T:C:1.0")

    results = await asyncio.gather(*(claim() for _ in range(12)))
    assert results.count(True) == 1
    assert await store.claim_event("discord", "message:T:C:1.0")
    old = utcnow() - timedelta(days=2)
    assert await store.claim_event("slack", "old", now=old)
    async with db.session() as session:
        assert await prune_events(session, older_than=utcnow() - timedelta(days=1)) == 1
    assert await store.claim_event("slack", "old")
    assert not await store.claim_event("slack", "message:T:C:1.0")


async def _wait_healthy(url: str, proc: asyncio.subprocess.Process) -> dict[str, object]:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(30):
            while True:
                if proc.returncode is not None:
                    raise AssertionError(f"server exited with {proc.returncode}")
                try:
                    async with http.get(url + "/healthz") as resp:
                        if resp.status == 200:
                            return dict(await resp.json())
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)  # polling another process's readiness


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["slack", "run"])
async def test_server_process_starts_and_stops_cleanly(tmp_path: Path, command: str) -> None:
    async with FakeSlack() as slack, FakeOpenRouter() as openrouter:
        team = slack.add_team("T1")
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'rb.db'}",
            "ROUTERBOT_SECRET_KEY": "wq1DS1v3WffZ3ns7Y-j4k6oZQ7dnnS8wr2E0pnlr5dQ=",
            "OPENROUTER_BASE_URL": openrouter.base_url,
            "SLACK_API_URL": slack.base_url,
            "SLACK_BOT_TOKEN": team.bot_token,
            "SLACK_SIGNING_SECRET": "s3cret",
            "PORT": str(port),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", command, env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            health = await _wait_healthy(f"http://127.0.0.1:{port}", proc)
            assert health["status"] == "ok"
            assert [c.method for c in slack.calls] == ["auth.test"]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err


async def test_socket_mode_with_a_bad_app_token_fails_with_a_sentence(tmp_path: Path) -> None:
    from bot.slack_app import serve_slack
    from tests.integration.slack_support import make_settings

    async with FakeSlack() as slack, FakeOpenRouter() as openrouter:
        team = slack.add_team("T1")
        config = make_settings(
            f"sqlite:///{tmp_path / 'rb.db'}", slack, openrouter, bot_token=team.bot_token
        )
        config.slack_app_token = SecretStr("xapp-1-not-valid")
        with pytest.raises(ConfigurationError, match="Slack rejected SLACK_APP_TOKEN"):
            await serve_slack(config, host="127.0.0.1", port=0, stop=asyncio.Event())
        assert [c.method for c in slack.calls] == ["auth.test", "apps.connections.open"]
