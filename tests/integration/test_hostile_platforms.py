"""Arbitrary bytes and Unicode through Slack's slash commands (signed, over HTTP, into the real
bolt app) and Discord's command options (through the real discord.py client).

Every command gets one answer and nothing raises; a chat's garbage reaches the provider
cleaned. Members send them, so what they type cannot change keys, budgets or allowlists, and
the chats keep working from one example to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.core.text import clean_text
from bot.slack_app.text import unescape
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.fakes.slack import FakeSlack, command_body, signed_headers
from tests.integration.discord_harness import Bot, running_bot
from tests.integration.hostile_support import (
    FAILURES,
    NAMES_A_MODEL,
    expected_prompt,
    hostile,
)
from tests.integration.slack_support import SIGNING_SECRET, make_settings, running_slack

FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SLACK_WORDS = ["/models", "/chat", "/apikey", "/costs", "/budget", "/routerbot"]
SLACK_SUBS = ["", "list", "add", "remove", "default", "set", "clear", "status", "workspace"]


def _prompts(fake: FakeOpenRouter) -> list[str]:
    return [r.json["messages"][-1]["content"] for r in fake.chat_requests]


# -- Slack --------------------------------------------------------------------------------------


@dataclass
class SlackWorld:
    loop: asyncio.AbstractEventLoop
    slack: FakeSlack
    openrouter: FakeOpenRouter
    url: str
    http: aiohttp.ClientSession
    drain: object

    def command(self, word: str, text: bytes) -> tuple[list[str], list[str]]:
        """Send ``word`` with ``text`` (form-encoded bytes, as Slack would carry them); the
        texts sent to its response_url, and those of messages posted meanwhile."""
        response_url = self.slack.response_url()
        body = command_body(
            word, "PLACEHOLDER", team_id="T1", user_id="U1", response_url=response_url
        )
        body = body.replace("text=PLACEHOLDER", urlencode({"text": text}))
        headers = signed_headers(body, SIGNING_SECRET)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        before = {m.ts for m in self.slack.posted("C1")}

        async def send() -> None:
            async with self.http.post(self.url + "/slack/events", data=body, headers=headers) as r:
                assert r.status == 200, await r.text()
            async with asyncio.timeout(20):
                await self.drain()  # type: ignore[operator]

        self.loop.run_until_complete(send())
        replies = [str(r.get("text", "")) for r in self.slack.responses_to(response_url)]
        posted = [m.text for m in self.slack.posted("C1") if m.ts not in before]
        return replies, posted


@pytest.fixture(scope="module")
def slack_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    tmp = Path(tmp_path_factory.mktemp("slack-hostile"))
    loop = asyncio.new_event_loop()
    slack, openrouter = FakeSlack(), FakeOpenRouter()
    loop.run_until_complete(slack.start())
    loop.run_until_complete(openrouter.start())
    team = slack.add_team("T1")
    slack.add_user("T1", "U1")
    config = make_settings(
        f"sqlite:///{tmp / 'hostile.db'}", slack, openrouter, bot_token=team.bot_token
    ).model_copy(update={"openrouter_api_key": SecretStr(DEFAULT_KEY)})
    server = running_slack(config)
    frontend, url, _runtime = loop.run_until_complete(server.__aenter__())
    http = loop.run_until_complete(_session())
    try:
        yield SlackWorld(loop, slack, openrouter, url, http, frontend.drain)
    finally:
        loop.run_until_complete(http.close())
        loop.run_until_complete(server.__aexit__(None, None, None))
        loop.run_until_complete(openrouter.stop())
        loop.run_until_complete(slack.stop())
        loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def _as_sent(text: str) -> bytes:
    """Text as bytes on the wire; a lone surrogate becomes bytes that are not UTF-8."""
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(
    word=st.sampled_from(SLACK_WORDS),
    sub=st.sampled_from(SLACK_SUBS),
    args=st.lists(hostile.map(_as_sent) | st.binary(max_size=30), max_size=3),
)
def test_slack_answers_any_command_once(
    slack_world: SlackWorld, word: str, sub: str, args: list[bytes]
) -> None:
    text = b" ".join([sub.encode(), *args]).strip()
    replies, posted = slack_world.command(word, text)
    answers = replies + posted
    assert answers, (word, text)
    assert not any(failure in answer for answer in answers for failure in FAILURES), answers


@FUZZ
@given(tail=hostile.map(_as_sent) | st.binary(max_size=40))
def test_a_slack_chat_with_garbage_reaches_the_provider_cleaned(
    slack_world: SlackWorld, tail: bytes
) -> None:
    # What the bolt app reads (parse_qs replaces bad bytes), cleaned and unescaped.
    prompt = expected_prompt(f"/chat {unescape(clean_text(tail))}")
    assume(prompt != NAMES_A_MODEL)
    sent = len(slack_world.openrouter.chat_requests)
    replies, posted = slack_world.command("/chat", tail)
    if prompt is None:
        assert replies and not posted and len(slack_world.openrouter.chat_requests) == sent
        return
    assert _prompts(slack_world.openrouter)[-1] == prompt
    [answer] = posted
    assert "\n" in answer and " · " in answer.rsplit("\n", 1)[-1], answer  # the footer


# -- Discord ------------------------------------------------------------------------------------


@dataclass
class DiscordWorld:
    loop: asyncio.AbstractEventLoop
    bot: Bot


@pytest.fixture(scope="module")
def discord_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiscordWorld]:
    tmp = Path(tmp_path_factory.mktemp("discord-hostile"))
    loop = asyncio.new_event_loop()
    running = running_bot(tmp, openrouter_api_key=DEFAULT_KEY)
    bot = loop.run_until_complete(running.__aenter__())
    try:
        yield DiscordWorld(loop, bot)
    finally:
        with contextlib.suppress(AssertionError):  # the 3 s ack check is for the examples
            loop.run_until_complete(running.__aexit__(None, None, None))
        loop.close()


DISCORD_OPTIONS = [
    ("models add", "id"),
    ("models remove", "id"),
    ("models default", "id"),
    ("budget set", "amount"),
    ("apikey set", "key"),
    ("chat", "model"),
]
option_text = st.text(st.characters(codec=None, categories=None), min_size=1, max_size=40) | hostile


@FUZZ
@given(option=st.sampled_from(DISCORD_OPTIONS), value=option_text)
def test_discord_answers_any_option_once(
    discord_world: DiscordWorld, option: tuple[str, str], value: str
) -> None:
    bot = discord_world.bot
    command, name = option
    assume(value)
    extra = {"prompt": "hi"} if command == "chat" else {}

    async def attempt() -> str:
        ix = await bot.slash(command, user=bot.member, **{name: value}, **extra)
        return await bot.replied(ix)

    text = discord_world.loop.run_until_complete(attempt())
    assert text and not any(failure in text for failure in FAILURES), text


@FUZZ
@given(prompt=option_text)
def test_a_discord_chat_with_garbage_reaches_the_provider_cleaned(
    discord_world: DiscordWorld, prompt: str
) -> None:
    bot = discord_world.bot
    assume(prompt)
    expected = clean_text(prompt).strip()

    async def attempt() -> str:
        ix = await bot.slash("chat", user=bot.member, prompt=prompt)
        if not expected:
            return await bot.replied(ix)
        return await bot.finished(ix)

    text = discord_world.loop.run_until_complete(attempt())
    assert not any(failure in text for failure in FAILURES), text
    if not expected:
        assert text == "The prompt is empty."
        return
    assert _prompts(bot.openrouter)[-1] == expected
