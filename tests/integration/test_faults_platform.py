"""Slack's and Discord's own APIs failing under the bot: 429s and 5xx on its calls.

After each fault the user has one clear sentence (or the answer, once the platform recovered),
nothing was charged for an answer that could not even be started, a finished answer is charged
once, and the next chat is answered normally.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from bot.core.dispatch import DATABASE_UNAVAILABLE, INTERNAL_ERROR
from storage.db import Database
from tests.fakes.discord import FakeDiscord
from tests.fakes.openrouter import DEFAULT_KEY
from tests.integration.discord_harness import running_bot
from tests.integration.slack_support import SlackHarness, slack_harness
from tests.integration.worker_support import check_ledger, has_footer

KEY = "sk-or-v1-platform-fault-key-0000001"


def specific(text: str) -> None:
    """The user's sentence names what failed, even when Slack's 5xx body is not JSON."""
    assert "Traceback" not in text and 'File "' not in text, text
    assert INTERNAL_ERROR not in text, text


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        yield harness


async def next_chat_is_answered(h: SlackHarness) -> None:
    sent = await h.command("/chat", "and now?")
    assert h.replies(sent) == []
    last = h.slack.posted("C1", top_level=True)[-1]
    assert last.text.split("\n\n")[1].startswith("echo: and now?") and has_footer(last.text)


# -- Slack --------------------------------------------------------------------------------------


async def test_database_outage_gets_its_own_sentence_on_slack(h: SlackHarness) -> None:
    """Every query fails as when the database server is down: the user is told that, in one
    line, not "something went wrong"; the provider is never called."""
    unreachable = Database("postgresql://postgres@127.0.0.1:1/routerbot")
    db = h.runtime.db
    # Sessions and the chat path's Core transactions alike reach the unreachable server.
    parts = ("url", "engine", "sessionmaker")
    working = {name: getattr(db, name) for name in parts}
    for name in parts:
        setattr(db, name, getattr(unreachable, name))
    try:
        sent = await h.command("/chat", "hello")
    finally:
        for name, value in working.items():
            setattr(db, name, value)
        await unreachable.dispose()
    assert sent.status == 200
    [reply] = h.replies(sent)
    assert reply["text"] == DATABASE_UNAVAILABLE
    assert h.openrouter.chat_requests == []
    await next_chat_is_answered(h)


async def test_slack_429_storm_on_the_first_post_costs_nothing(h: SlackHarness) -> None:
    # One try and the client's three retries, each after Retry-After.
    h.slack.fail("chat.postMessage", status=429, retry_after=1, times=4)
    sent = await h.command("/chat", "hello")
    [reply] = h.replies(sent)
    assert reply["response_type"] == "ephemeral"
    assert "Slack would not show the answer (ratelimited)" in reply["text"]
    assert "Nothing was charged." in reply["text"] and "\n" not in reply["text"]
    assert h.openrouter.chat_requests == []  # the provider was never called
    assert (await check_ledger(h.runtime.settings.database_url)).rows == []
    await next_chat_is_answered(h)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_slack_5xx_on_the_first_post(h: SlackHarness, status: int) -> None:
    # slack_sdk retries a 500 or 503 twice (a 502 not at all): the fault outlasts the retries.
    h.slack.fail("chat.postMessage", status=status, times=3 if status in (500, 503) else 1)
    sent = await h.command("/chat", "hello")
    [reply] = h.replies(sent)
    assert reply["response_type"] == "ephemeral" and "\n" not in reply["text"]
    assert h.openrouter.chat_requests == []
    assert (await check_ledger(h.runtime.settings.database_url)).rows == []
    await next_chat_is_answered(h)
    specific(reply["text"])
    assert "Slack would not show the answer" in reply["text"]
    assert "Nothing was charged." in reply["text"]


async def test_slack_5xx_on_the_final_edit_is_retried(h: SlackHarness) -> None:
    h.slack.fail("chat.update", status=503, times=2)
    sent = await h.command("/chat", "hello")
    assert h.replies(sent) == []
    [message] = h.slack.posted("C1")
    assert [c.status for c in h.slack.calls_to("chat.update")] == [503, 503, 200]
    assert has_footer(message.text)
    check = await check_ledger(h.runtime.settings.database_url)
    assert check.problems == [] and [r.outcome for r in check.rows] == ["ok"]


async def test_slack_refusing_the_final_edit_is_told_and_charged_once(h: SlackHarness) -> None:
    h.slack.fail("chat.update", status=500, times=3)
    sent = await h.command("/chat", "hello")
    [reply] = h.replies(sent)
    assert reply["response_type"] == "ephemeral" and "\n" not in reply["text"]
    check = await check_ledger(h.runtime.settings.database_url)
    # The provider did answer (and bill): the chat is in the ledger once, at its real cost.
    assert check.problems == [] and [r.outcome for r in check.rows] == ["ok"]
    await next_chat_is_answered(h)
    assert len((await check_ledger(h.runtime.settings.database_url)).rows) == 2
    specific(reply["text"])
    assert "Slack would not show the answer" in reply["text"]


async def test_slack_users_info_failing_refuses_admin_commands_clearly(h: SlackHarness) -> None:
    h.slack.fail("users.info", status=500, times=3)
    sent = await h.command("/budget", "set 5", user="UOWNER")
    [reply] = h.replies(sent)
    assert "\n" not in reply["text"]
    again = await h.command("/budget", "set 5", user="UOWNER")  # Slack is back: it works
    assert "monthly budget is now $5.00" in h.reply_text(again)
    specific(reply["text"])
    assert "could not check whether you are a workspace admin" in reply["text"]


# -- Discord ------------------------------------------------------------------------------------


@dataclass
class ServerError:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int


class FlakyDiscord(FakeDiscord):
    """The fake Discord, able to answer chosen calls with a 5xx (its 429s are built in)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.server_errors: list[ServerError] = []

    def server_error(self, method: str, path: str, *, status: int, times: int = 1) -> None:
        self.server_errors.append(ServerError(method, re.compile(path), status, times))

    def _limited(self, method: str, path: str) -> web.Response | None:
        for rule in self.server_errors:
            if rule.method == method and rule.pattern.search(path):
                rule.times -= 1
                if rule.times <= 0:
                    self.server_errors.remove(rule)
                body = json.dumps({"message": "Service Unavailable", "code": 0})
                return web.Response(
                    status=rule.status, body=body.encode(), content_type="application/json"
                )
        return super()._limited(method, path)


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyDiscord]:
    async with FlakyDiscord() as discord:
        yield discord


async def discord_chat_then_next(bot, prompt: str) -> str:
    ix = await bot.slash("chat", prompt=prompt)
    text = await bot.finished(ix, timeout=15)
    nxt = await bot.slash("chat", prompt="and now?")
    assert (await bot.finished(nxt)).startswith("echo: and now?")
    return text


async def test_discord_429_on_the_defer_is_waited_out_within_3_s(tmp_path, flaky) -> None:
    async with running_bot(tmp_path, discord=flaky, openrouter_api_key=DEFAULT_KEY) as bot:
        flaky.rate_limit("POST", r"/callback$", retry_after=0.3)
        text = await discord_chat_then_next(bot, "hello")
        assert text.startswith("echo: hello")
        statuses = [c.status for c in flaky.calls if c.path.endswith("/callback")]
        assert statuses[0] == 429 and statuses[1] in (200, 204)
        # running_bot checks on exit that every interaction was answered within 3 s.
        check = await check_ledger(bot.settings.database_url)
        assert check.problems == [] and [r.outcome for r in check.rows] == ["ok", "ok"]


@pytest.mark.parametrize("status", [500, 502])
async def test_discord_5xx_on_the_final_edit_is_retried(tmp_path, flaky, status: int) -> None:
    async with running_bot(tmp_path, discord=flaky, openrouter_api_key=DEFAULT_KEY) as bot:
        flaky.server_error("PATCH", r"/messages/@original$", status=status)
        text = await discord_chat_then_next(bot, "hello")
        assert text.startswith("echo: hello")
        check = await check_ledger(bot.settings.database_url)
        assert check.problems == [] and [r.outcome for r in check.rows] == ["ok", "ok"]


async def test_discord_503_on_the_final_edit_still_shows_the_answer(tmp_path, flaky) -> None:
    # discord.py retries 500/502/504 itself, but not 503.
    async with running_bot(tmp_path, discord=flaky, openrouter_api_key=DEFAULT_KEY) as bot:
        flaky.server_error("PATCH", r"/messages/@original$", status=503)
        text = await discord_chat_then_next(bot, "hello")
        assert text.startswith("echo: hello")
        check = await check_ledger(bot.settings.database_url)
        assert check.problems == [] and [r.outcome for r in check.rows] == ["ok", "ok"]
