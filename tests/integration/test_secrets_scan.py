"""No plain secret anywhere: the key flows run on every front-end, then everything that left
the bot or stayed behind is scanned for the plain API keys (and the bot's own secrets).

Scanned: logs at DEBUG (``caplog`` in process, stderr of real processes), every recorded
outbound platform call (the fake Slack's calls, ephemeral replies, modals and messages; the
fake Discord's REST bodies), the console's output, and the database: SQLite files including
``-wal`` and ``-shm``, and on PostgreSQL every text, bytea and JSON column of every table.
A secret is looked for verbatim and by its distinctive tail (the part a mask never shows).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import aiohttp
import pytest

from bot.logging import RedactingFilter
from storage.crypto import generate_key
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import FakeSlack
from tests.integration.discord_harness import running_bot
from tests.integration.slack_support import slack_harness
from tests.integration.worker_support import (
    SIGNING_SECRET,
    SlackClient,
    base_env,
    fresh_postgres,
    slack_env,
    start_worker,
    wait_healthy,
)

OWN_LOGGERS = ("bot", "adapters", "storage", "tests")


def new_key() -> str:
    """A valid-looking OpenRouter key no other test uses, so any hit is this test's leak."""
    return f"sk-or-v1-{secrets.token_hex(28)}"


def tails(secret: str) -> list[str]:
    """The secret, and its last 16 characters (masks show at most the last 4)."""
    return [secret, secret[-16:]]


def leaks(where: Mapping[str, str | bytes], secrets_: Iterable[str]) -> list[str]:
    found = []
    for secret in secrets_:
        for needle in tails(secret):
            for name, blob in where.items():
                haystack = blob if isinstance(blob, str) else blob.decode("latin-1")
                if needle in haystack:
                    found.append(f"{needle[:12]}… in {name}")
    return found


def sqlite_files(directory: Path) -> dict[str, bytes]:
    files = {str(p): p.read_bytes() for p in directory.rglob("*.db*") if p.is_file()}
    assert any(name.endswith(".db") for name in files), f"no database under {directory}"
    return files


def logged(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """What the records say raw (our own loggers must never need the filter), and what
    production writes: every record through the redacting filter, third-party ones too."""
    raw = [r for r in caplog.records if r.name.split(".")[0] in OWN_LOGGERS]
    own = "\n".join(r.getMessage() + (r.exc_text or "") for r in raw)
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    written = []
    for record in caplog.records:
        record = logging.makeLogRecord(record.__dict__)
        if handler.filter(record):
            written.append(logging.Formatter().format(record))
    return {"own loggers (raw)": own, "logs as written": "\n".join(written)}


async def postgres_dump(url: str) -> dict[str, bytes]:
    """Every text, bytea and JSON value of every table in the public schema."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'character', 'bytea', 'json', 'jsonb')"
        )
        dump: dict[str, bytes] = {}
        for table, column in columns:
            values = await conn.fetch(f'SELECT "{column}"::text AS v FROM "{table}"')
            dump[f"{table}.{column}"] = "\n".join(str(v["v"]) for v in values).encode()
        return dump
    finally:
        await conn.close()


# -- console ------------------------------------------------------------------------------------


async def test_console_never_echoes_logs_or_stores_a_key(tmp_path: Path) -> None:
    key, wrong, secret_key = new_key(), new_key(), generate_key()
    async with FakeOpenRouter(valid_keys=(key,)) as openrouter:
        env = base_env(
            tmp_path,
            DATABASE_URL=f"sqlite:///{tmp_path / 'console.db'}",
            ROUTERBOT_SECRET_KEY=secret_key,
            OPENROUTER_BASE_URL=openrouter.base_url,
        )
        lines = [
            f"/apikey set {key}",
            "/apikey status",
            "/chat hello there",
            f"/apikey set {wrong}",
            "/costs",
            "/apikey clear",
            f"/apikey set {key}",
            "/quit",
        ]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "console", "--workspace", "acme", env=env,
            cwd=tmp_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate("\n".join(lines).encode()), 60)
    assert proc.returncode == 0, err.decode()
    assert b"Saved the OpenRouter key sk-or-v1-" in out  # the masked form, so flows ran
    assert b"rejected that key" in out and b"echo: hello there" in out
    found = leaks(
        {"stdout": out, "stderr": err, **sqlite_files(tmp_path)}, [key, wrong, secret_key]
    )
    assert found == []


# -- Slack --------------------------------------------------------------------------------------


async def test_slack_in_process_logs_calls_and_sqlite_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, other, wrong = new_key(), new_key(), new_key()
    url = f"sqlite:///{tmp_path / 'slack.db'}"
    async with slack_harness(url, keys=(key, other)) as h:
        await h.command("/apikey", f"set {key}", user="UADMIN")
        await h.command("/apikey", "status", user="UADMIN")
        await h.command("/chat", "hello")
        await h.command("/apikey", f"set {wrong}", user="UADMIN")
        await h.command("/apikey", f"set {key}", user="U1")  # a member: refused
        await h.command("/apikey", "", user="UADMIN")  # the modal
        [view] = h.slack.views
        metadata = json.loads(view["private_metadata"])
        response_url = h.slack.response_url()
        submission = {
            "type": "view_submission",
            "team": {"id": "T1", "domain": "t1"},
            "user": {"id": "UADMIN", "team_id": "T1"},
            "api_app_id": "AFAKEAPP",
            "trigger_id": "trig-submit",
            "view": {
                "id": view["id"], "type": "modal", "callback_id": view["callback_id"],
                "private_metadata": json.dumps({**metadata, "r": response_url}),
                "state": {"values": {"key": {"key": {"type": "plain_text_input",
                                                     "value": other}}}},
            },
        }  # fmt: skip
        await h.interaction(submission)
        await h.settle()
        assert "Saved the OpenRouter key sk-or-v1-" in h.slack.responses_to(response_url)[0]["text"]
        sent = {
            "calls": json.dumps([[c.method, c.args] for c in h.slack.calls], default=str),
            "responses": json.dumps(h.slack.responses),
            "views": json.dumps(h.slack.views),
            "messages": json.dumps([m.history for m in h.slack.messages.values()]),
        }
        files_open = sqlite_files(tmp_path)  # with the engine still open: the WAL holds pages
    found = leaks({**sent, **logged(caplog), **files_open, **sqlite_files(tmp_path)},
                  [key, other, wrong])  # fmt: skip
    assert found == []


@pytest.mark.postgres
async def test_slack_worker_process_at_debug_on_postgres(tmp_path: Path) -> None:
    key, other, wrong, secret_key = new_key(), new_key(), new_key(), generate_key()
    async with (
        fresh_postgres() as url,
        FakeSlack() as slack,
        FakeOpenRouter(valid_keys=(key, other)) as openrouter,
        aiohttp.ClientSession() as http,
    ):
        team = slack.add_team("T1")
        slack.add_user("T1", "U1")
        env = slack_env(
            tmp_path, database_url=url, secret_key=secret_key, slack=slack,
            bot_token=team.bot_token, openrouter_url=openrouter.base_url,
            ROUTERBOT_LOG_LEVEL="DEBUG",
        )  # fmt: skip
        worker = await start_worker("slack", env, cwd=tmp_path)
        try:
            await wait_healthy(worker)
            client = SlackClient(slack, http)

            async def command(text: str, user: str = "UADMIN", word: str = "/apikey") -> str:
                acked = await client.command(worker.url, word, text, user=user)
                await slack.wait_for(lambda: bool(client.replies(acked)), 10)
                return client.replies(acked)[0]

            assert "Saved the OpenRouter key" in await command(f"set {key}")
            assert "sk-or-v1-" in await command("status")
            assert "rejected that key" in await command(f"set {wrong}")
            assert "Only workspace admins" in await command(f"set {other}", user="U1")
            await command("clear")
            assert "Saved the OpenRouter key" in await command(f"set {other}")
            acked = await client.command(worker.url, "/chat", "hello")
            await slack.wait_for(lambda: any("echo: hello" in m.text for m in slack.posted()), 10)
            assert client.replies(acked) == []
        finally:
            assert await worker.stop() == 0
        stderr = worker.stderr_text()
        assert " DEBUG " in stderr  # the scan covered debug logging
        sent = {
            "calls": json.dumps([[c.method, c.args] for c in slack.calls], default=str),
            "responses": json.dumps(slack.responses),
            "messages": json.dumps([m.history for m in slack.messages.values()]),
        }
        dump = await postgres_dump(url)
        assert dump["provider_key.ciphertext"]  # the key is there, encrypted
        # The scan finds a key where it belongs: in the requests to the provider, and only there.
        to_provider = json.dumps([dict(r.headers) for r in openrouter.requests])
        assert leaks({"provider requests": to_provider}, [key])
        found = leaks(
            {"stderr": stderr, **sent, **dump},
            [key, other, wrong, secret_key, team.bot_token, SIGNING_SECRET],
        )
        assert found == []


# -- Discord ------------------------------------------------------------------------------------


async def test_discord_logs_calls_and_sqlite_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, other, wrong = new_key(), new_key(), new_key()
    async with running_bot(tmp_path, valid_keys=(key, other)) as bot:
        typed = await bot.slash("apikey set", user=bot.admin, key=key)
        assert "Saved the OpenRouter key sk-or-v1-" in await bot.replied(typed)
        shown = await bot.slash("apikey set", user=bot.owner)
        await bot.discord.wait_for(lambda: shown.response_type, what="the modal")
        submitted = await bot.discord.submit_modal(shown, **{"API key": other})
        assert "Saved the OpenRouter key" in await bot.replied(submitted)
        again = await bot.slash("apikey set", user=bot.owner)
        await bot.discord.wait_for(lambda: again.response_type, what="the modal")
        rejected = await bot.discord.submit_modal(again, **{"API key": wrong})
        assert "rejected" in await bot.replied(rejected)
        member = await bot.slash("apikey set", user=bot.member, key=wrong)
        assert "Only server admins" in await bot.replied(member)
        status = await bot.slash("apikey status", user=bot.admin)
        assert "sk-or-v1-…" in await bot.replied(status)
        chat = await bot.slash("chat", prompt="hello")
        await bot.finished(chat)
        calls = "\n".join(json.dumps(c.json) for c in bot.discord.calls if c.json is not None)
        files_open = sqlite_files(tmp_path)
    found = leaks(
        {"REST calls": calls, **logged(caplog), **files_open, **sqlite_files(tmp_path)},
        [
            key,
            other,
            wrong,
            bot.settings.discord_token.get_secret_value(),  # type: ignore[union-attr]
            # Interaction tokens edit a response for 15 minutes; discord.py logs the webhook
            # URLs that carry them at DEBUG.
            *(ix.token for ix in (typed, shown, submitted, again, rejected, member, status, chat)),
        ],
    )
    assert found == []
