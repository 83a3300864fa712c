"""Fuzzed requests against the real front-ends: only what Slack or Discord vouch for runs.

Slack: hypothesis varies the signature, the timestamp and the body of admin commands (and
mention events) sent over HTTP to the real bolt app. Exactly-correct signatures within five
minutes run (the positive control); everything else is refused with a 401 and changes nothing,
posts nothing and calls no provider.

Discord: hypothesis varies the member's resolved permission bits (anything but Administrator
and Manage Server) on every command that changes keys, allowlists or budgets, sent through the
real discord.py client; the governed state never changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.runtime import Runtime
from bot.slack_app import SlackFrontend
from storage.models import AllowedModel, Budget, ProviderKey, Workspace
from tests.fakes.discord import FakeUser
from tests.fakes.discord_payloads import ADMINISTRATOR, MANAGE_GUILD
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.fakes.slack import FakeSlack, command_body, event_body
from tests.integration.discord_harness import OTHER_KEY, Bot, running_bot
from tests.integration.slack_support import SIGNING_SECRET, make_settings, running_slack

FIVE_MINUTES = 300
#: Clear of the five-minute edge on either side, so the test never races the clock.
MARGIN = 10


async def governed_state(runtime: Runtime) -> tuple[object, ...]:
    """Keys, allowlists, defaults and budgets: what only admins may change."""
    async with runtime.db.session() as s:
        keys = sorted(
            (k.workspace_id, k.provider, k.ciphertext)
            for k in (await s.scalars(select(ProviderKey))).all()
        )
        models = sorted(
            (m.workspace_id, m.model_id) for m in (await s.scalars(select(AllowedModel))).all()
        )
        defaults = sorted(
            (w.id or 0, w.default_model or "") for w in (await s.scalars(select(Workspace))).all()
        )
        budgets = sorted(
            (b.workspace_id, b.channel_id, b.limit_nano)
            for b in (await s.scalars(select(Budget))).all()
        )
    return keys, models, defaults, budgets


# -- Slack --------------------------------------------------------------------------------------


@dataclass
class SlackWorld:
    loop: asyncio.AbstractEventLoop
    slack: FakeSlack
    openrouter: FakeOpenRouter
    frontend: SlackFrontend
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession
    amounts: Iterator[int]


@pytest.fixture(scope="module")
def slack_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    """One running Slack front-end for every example (hypothesis reruns the test body)."""
    tmp = Path(tmp_path_factory.mktemp("slack-fuzz"))
    loop = asyncio.new_event_loop()
    slack, openrouter = FakeSlack(), FakeOpenRouter()
    loop.run_until_complete(slack.start())
    loop.run_until_complete(openrouter.start())
    team = slack.add_team("T1")
    config = make_settings(
        f"sqlite:///{tmp / 'fuzz.db'}",
        slack,
        openrouter,
        bot_token=team.bot_token,
        admins="slack:UADMIN",
    )
    server = running_slack(config)
    frontend, url, runtime = loop.run_until_complete(server.__aenter__())
    http = loop.run_until_complete(_session())
    try:
        yield SlackWorld(loop, slack, openrouter, frontend, runtime, url, http, itertools.count(11))
    finally:
        loop.run_until_complete(http.close())
        loop.run_until_complete(server.__aexit__(None, None, None))
        loop.run_until_complete(openrouter.stop())
        loop.run_until_complete(slack.stop())
        loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def sign(body: str, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    mac = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return f"v0={mac.hexdigest()}"


@dataclass(frozen=True)
class Tamper:
    """How a request deviates from what Slack would send (``none``: it does not)."""

    kind: str
    offset: int = 0
    text: str = ""
    position: int = 0


tampering = st.one_of(
    st.builds(Tamper, st.just("none"), st.integers(-FIVE_MINUTES + MARGIN, FIVE_MINUTES - MARGIN)),
    st.builds(
        Tamper,
        st.just("stale"),
        st.one_of(
            st.integers(FIVE_MINUTES + MARGIN, 10**9), st.integers(-(10**9), -FIVE_MINUTES - MARGIN)
        ),
    ),
    st.builds(Tamper, st.just("random signature"), text=st.text(max_size=80)),
    st.builds(Tamper, st.just("hex signature"), text=st.text("0123456789abcdef", min_size=64, max_size=64)),
    st.builds(Tamper, st.just("flip"), position=st.integers(3, 66)),
    st.builds(Tamper, st.just("wrong secret"), text=st.text(min_size=1, max_size=40)),
    st.builds(Tamper, st.just("body changed"), text=st.text(min_size=1, max_size=20)),
    st.builds(Tamper, st.just("timestamp changed"), offset=st.integers(-1000, 1000).filter(bool)),
    st.builds(Tamper, st.just("timestamp text"), text=st.text(max_size=12)),
    st.builds(Tamper, st.sampled_from(["no signature", "no timestamp", "v1", "uppercase"])),
)  # fmt: skip


def tampered(body: str, tamper: Tamper) -> tuple[str, dict[str, str]]:
    """The body and headers actually sent."""
    now = int(time.time())
    ts = str(now + tamper.offset) if tamper.kind in ("none", "stale") else str(now)
    signature = sign(body, ts)
    sent = body
    match tamper.kind:
        case "random signature" | "hex signature":
            signature = tamper.text if tamper.kind == "random signature" else f"v0={tamper.text}"
        case "flip":
            i = tamper.position
            swapped = "0" if signature[i] != "0" else "1"
            signature = signature[:i] + swapped + signature[i + 1 :]
        case "wrong secret":
            secret = tamper.text if tamper.text != SIGNING_SECRET else tamper.text + "x"
            signature = sign(body, ts, secret)
        case "body changed":
            sent = body + tamper.text
        case "timestamp changed":
            ts = str(now + tamper.offset)
        case "timestamp text":
            ts = tamper.text if not tamper.text.strip().isdigit() else tamper.text + "x"
        case "v1":
            signature = "v1=" + signature[3:]
        case "uppercase":
            signature = "v0=" + signature[3:].upper()
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
    if tamper.kind == "no signature":
        del headers["X-Slack-Signature"]
    if tamper.kind == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    # Header values must be latin-1 on the wire; anything else is refused by the client.
    headers = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
    return sent, headers


async def post(world: SlackWorld, body: str, headers: dict[str, str], kind: str) -> int:
    content = "application/json" if kind == "event" else "application/x-www-form-urlencoded"
    try:
        async with world.http.post(
            world.url + "/slack/events",
            data=body.encode(),
            headers={**headers, "Content-Type": content},
        ) as resp:
            await resp.read()
            return resp.status
    except ValueError:
        return -1  # a header the HTTP client itself refuses to send: it never arrives


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tamper=tampering, kind=st.sampled_from(["command", "event"]))
def test_only_correctly_signed_fresh_requests_run(
    slack_world: SlackWorld, tamper: Tamper, kind: str
) -> None:
    world = slack_world

    async def attempt() -> None:
        amount = next(world.amounts)
        response_url = world.slack.response_url()
        if kind == "command":
            body = command_body(
                "/budget", f"set {amount}", team_id="T1", user_id="UADMIN",
                response_url=response_url,
            )  # fmt: skip
        else:
            event = {"type": "app_mention", "channel": "C1", "user": "U1",
                     "text": f"<@UBOTT1> question {amount}", "ts": f"1800000000.{amount:06d}"}  # fmt: skip
            body = event_body(event, team_id="T1", event_id=f"Ev{amount}")
        before = await governed_state(world.runtime)
        posts_before = len(world.slack.posted())
        provider_before = len(world.openrouter.chat_requests)
        sent, headers = tampered(body, tamper)
        status = await post(world, sent, headers, kind)
        async with asyncio.timeout(10):
            await world.frontend.drain()
        if tamper.kind == "none":
            assert status == 200
            if kind == "command":  # the positive control: a correct request does run
                [reply] = world.slack.responses_to(response_url)
                assert f"monthly budget is now ${amount}.00" in reply["text"]
            return
        assert status in (401, -1), (tamper, status)
        assert world.slack.responses_to(response_url) == []
        assert await governed_state(world.runtime) == before
        assert len(world.slack.posted()) == posts_before
        assert len(world.openrouter.chat_requests) == provider_before

    world.loop.run_until_complete(attempt())


def test_a_non_ascii_signature_is_refused_with_a_401(slack_world: SlackWorld) -> None:
    world = slack_world
    body = command_body("/budget", "set 9", team_id="T1", user_id="UADMIN",
                        response_url=world.slack.response_url())  # fmt: skip
    _, headers = tampered(body, Tamper("random signature", text="v0=é"))
    status = world.loop.run_until_complete(post(world, body, headers, "command"))
    assert status == 401


def test_a_non_numeric_timestamp_is_refused_with_a_401(slack_world: SlackWorld) -> None:
    world = slack_world
    body = command_body("/budget", "set 9", team_id="T1", user_id="UADMIN",
                        response_url=world.slack.response_url())  # fmt: skip
    _, headers = tampered(body, Tamper("timestamp text", text="soon"))
    status = world.loop.run_until_complete(post(world, body, headers, "command"))
    assert status == 401


def test_an_unsigned_malformed_event_is_refused_with_a_401(slack_world: SlackWorld) -> None:
    world = slack_world
    body = event_body({"type": "app_mention"}, team_id="T1", event_id="EvBroken") + "}"
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}
    status = world.loop.run_until_complete(post(world, body, headers, "event"))
    assert status == 401


# -- Discord ------------------------------------------------------------------------------------


@dataclass
class DiscordWorld:
    loop: asyncio.AbstractEventLoop
    bot: Bot
    members: Iterator[int]


@pytest.fixture(scope="module")
def discord_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiscordWorld]:
    tmp = Path(tmp_path_factory.mktemp("discord-fuzz"))
    loop = asyncio.new_event_loop()
    running = running_bot(tmp)
    bot = loop.run_until_complete(running.__aenter__())

    async def prepare() -> None:
        # An admin sets everything up; that it changes the state is the positive control.
        empty = await governed_state(bot.runtime)
        for command, options in [
            ("apikey set", {"key": DEFAULT_KEY}),
            ("budget set", {"amount": "50"}),
            ("budget set", {"amount": "10", "channel": True}),
        ]:
            ix = await bot.slash(command, user=bot.admin, **options)
            await bot.replied(ix)
        assert await governed_state(bot.runtime) != empty

    loop.run_until_complete(prepare())
    try:
        yield DiscordWorld(loop, bot, itertools.count())
    finally:
        loop.run_until_complete(running.__aexit__(None, None, None))
        loop.close()


MUTATIONS: list[tuple[str, dict[str, Any]]] = [
    ("apikey set", {"key": OTHER_KEY}),
    ("apikey set", {}),  # the modal
    ("apikey clear", {}),
    ("models add", {"id": "openai/gpt-4o"}),
    ("models remove", {"id": "openai/gpt-4o-mini"}),
    ("models default", {"id": "openai/gpt-4o-mini"}),
    ("budget set", {"amount": "5"}),
    ("budget set", {"amount": "7", "channel": True}),
    ("budget clear", {}),
    ("budget clear", {"channel": True}),
]
not_admin = st.integers(0, 2**53 - 1).map(lambda bits: bits & ~(ADMINISTRATOR | MANAGE_GUILD))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(permissions=not_admin, mutation=st.sampled_from(MUTATIONS), thread=st.booleans())
def test_no_permission_bits_short_of_admin_change_governed_state(
    discord_world: DiscordWorld,
    permissions: int,
    mutation: tuple[str, dict[str, Any]],
    thread: bool,
) -> None:
    world = discord_world
    bot = world.bot
    command, options = mutation
    user = FakeUser(f"member{next(world.members)}", permissions=permissions)

    async def attempt() -> None:
        before = await governed_state(bot.runtime)
        ix = await bot.slash(command, user=user, thread=thread, **options)
        await bot.discord.wait_for(lambda: ix.response_type is not None, what="a response")
        if ix.response_type == 9:  # a modal was shown after all: submit a key through it
            submitted = await bot.discord.submit_modal(ix, **{"API key": OTHER_KEY})
            await bot.replied(submitted)
        else:
            text = await bot.replied(ix)
            assert "Only server admins" in text, (command, options, text)
            assert ix.ephemeral
        assert await governed_state(bot.runtime) == before
        assert OTHER_KEY not in json.dumps([c.json for c in bot.discord.calls])

    world.loop.run_until_complete(attempt())
