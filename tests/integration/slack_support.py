"""Test harness for the Slack front-end: the real ``serve_slack`` on loopback, a fake Slack Web
API behind ``SLACK_API_URL`` and a fake OpenRouter behind ``OPENROUTER_BASE_URL``.

Requests go in signed, over HTTP, as Slack sends them; background work is awaited with
``SlackFrontend.drain()`` (no sleeping).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from pydantic import SecretStr

from bot.config import Settings
from bot.core.replies import Invocation
from bot.runtime import Runtime, build_runtime
from bot.slack_app import SlackFrontend, serve_slack
from storage.crypto import generate_key
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import FakeSlack, FakeTeam, command_body, event_body, signed_headers

SIGNING_SECRET = "test-signing-secret"
DEFAULT_MODEL = "anthropic/claude-3.5-sonnet"


def make_settings(
    database_url: str,
    slack: FakeSlack,
    openrouter: FakeOpenRouter,
    *,
    bot_token: str | None = None,
    oauth: bool = False,
    admins: str = "",
    secret_key: str | None = None,
    streaming: Literal["auto", "update"] = "update",
) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        routerbot_secret_key=SecretStr(secret_key or generate_key()),
        openrouter_base_url=openrouter.base_url,
        openrouter_api_key=None,
        fireworks_api_key=None,
        slack_api_url=slack.base_url,
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_bot_token=None if oauth else SecretStr(bot_token or ""),
        slack_app_token=None,
        slack_client_id=slack.client_id if oauth else None,
        slack_client_secret=SecretStr(slack.client_secret) if oauth else None,
        routerbot_admins=admins,
        slack_streaming=streaming,
        port=0,
    )


@dataclass
class Sent:
    status: int
    body: str
    seconds: float
    response_url: str = ""


@dataclass
class SlackHarness:
    slack: FakeSlack
    openrouter: FakeOpenRouter
    runtime: Runtime
    frontend: SlackFrontend
    url: str
    http: aiohttp.ClientSession
    teams: dict[str, FakeTeam] = field(default_factory=dict)

    async def post(self, path: str, body: str, headers: dict[str, str]) -> Sent:
        started = time.perf_counter()
        async with self.http.post(self.url + path, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
        return Sent(resp.status, text, time.perf_counter() - started)

    async def command(
        self,
        command: str,
        text: str = "",
        *,
        team: str = "T1",
        user: str = "U1",
        channel: str = "C1",
        trigger_id: str | None = None,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        settle: bool = True,
    ) -> Sent:
        """Send a slash command; by default wait for all the work it started."""
        response_url = self.slack.response_url()
        body = command_body(
            command,
            text,
            team_id=team,
            user_id=user,
            channel_id=channel,
            response_url=response_url,
            trigger_id=trigger_id,
        )
        headers = signed_headers(body, secret, timestamp=timestamp)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        sent = await self.post("/slack/events", body, headers)
        sent.response_url = response_url
        if settle:
            await self.settle()
        return sent

    async def event(
        self,
        event: dict[str, Any],
        *,
        team: str = "T1",
        event_id: str = "Ev1",
        retry_num: int | None = None,
        settle: bool = True,
    ) -> Sent:
        if event.get("channel") and event.get("ts"):
            self.slack.user_message(
                event["channel"], event["ts"], event.get("text", ""), event.get("thread_ts")
            )
        body = event_body(event, team_id=team, event_id=event_id)
        headers = signed_headers(body, SIGNING_SECRET, retry_num=retry_num)
        headers["Content-Type"] = "application/json"
        sent = await self.post("/slack/events", body, headers)
        if settle:
            await self.settle()
        return sent

    async def interaction(self, payload: dict[str, Any]) -> Sent:
        from urllib.parse import urlencode

        body = urlencode({"payload": json.dumps(payload)})
        headers = signed_headers(body, SIGNING_SECRET)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.post("/slack/events", body, headers)

    async def settle(self) -> None:
        async with asyncio.timeout(20):
            await self.frontend.drain()

    def replies(self, sent: Sent) -> list[dict[str, Any]]:
        """What the command's ``response_url`` received."""
        return self.slack.responses_to(sent.response_url)

    def reply_text(self, sent: Sent) -> str:
        return "\n".join(str(r.get("text", "")) for r in self.replies(sent))

    async def set_key(self, team: str, key: str) -> None:
        ctx = Invocation("slack", team, "C1", "UADMIN", is_admin=True)
        await self.runtime.service.keys.set_key(ctx, SecretStr(key), None)

    async def usage_rows(self) -> list[Any]:
        from sqlalchemy import select

        from storage.models import UsageRecord

        async with self.runtime.db.session() as session:
            return list((await session.scalars(select(UsageRecord))).all())


@asynccontextmanager
async def running_slack(
    settings: Settings, runtime: Runtime | None = None
) -> AsyncIterator[tuple[SlackFrontend, str, Runtime]]:
    """``serve_slack`` on a free loopback port, stopped (and cleaned up) on exit."""
    own = runtime is None
    if runtime is None:
        runtime, _ = await build_runtime(settings)
    stop = asyncio.Event()
    ready: asyncio.Future[tuple[SlackFrontend, int]] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve_slack(
            settings,
            runtime=runtime,
            host="127.0.0.1",
            port=0,
            stop=stop,
            on_ready=lambda frontend, port: ready.set_result((frontend, port)),
        )
    )
    try:
        async with asyncio.timeout(20):
            done, _ = await asyncio.wait({server, ready}, return_when=asyncio.FIRST_COMPLETED)
        if server in done:
            server.result()  # re-raise why it stopped
        frontend, port = ready.result()
        yield frontend, f"http://127.0.0.1:{port}", runtime
    finally:
        stop.set()
        try:
            await server
        finally:
            if own:
                await runtime.aclose()


@asynccontextmanager
async def slack_harness(
    database_url: str,
    *,
    teams: tuple[str, ...] = ("T1",),
    oauth: bool = False,
    admins: str = "",
    keys: tuple[str, ...] = ("sk-or-v1-test-key-one-0001",),
    streaming: Literal["auto", "update"] = "update",
) -> AsyncIterator[SlackHarness]:
    """Fakes and the Slack front-end; single-workspace mode uses the first team's token.

    ``streaming`` is ``SLACK_STREAMING``: most tests check the ``chat.update`` shape (question
    and answer in one channel message); ``auto`` streams natively into the question's thread.

    In OAuth mode the teams are installed through the real install flow first.
    """
    async with FakeSlack() as slack, FakeOpenRouter(valid_keys=keys) as openrouter:
        fake_teams = {team: slack.add_team(team) for team in teams}
        for team in teams:
            slack.add_user(team, "U1")
            slack.add_user(team, "UADMIN", admin=True)
            slack.add_user(team, "UOWNER", owner=True)
        first = fake_teams[teams[0]]
        settings = make_settings(
            database_url,
            slack,
            openrouter,
            bot_token=first.bot_token,
            oauth=oauth,
            admins=admins,
            streaming=streaming,
        )
        async with (
            running_slack(settings) as (frontend, url, runtime),
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            harness = SlackHarness(slack, openrouter, runtime, frontend, url, http, fake_teams)
            if oauth:
                for team in fake_teams.values():
                    await install(harness, team)
            yield harness


async def install(harness: SlackHarness, team: FakeTeam) -> str:
    """Run the OAuth install in a browser-like session; returns the success page."""
    async with harness.http.get(harness.url + "/slack/install", allow_redirects=False) as resp:
        page = await resp.text()
        assert resp.status == 200, page
        # The state cookie is marked Secure; a browser on https would send it back.
        cookie = "; ".join(f"{m.key}={m.value}" for m in resp.cookies.values())
    state = page.split("state=", 1)[1].split("&", 1)[0].split('"', 1)[0]
    code = harness.slack.oauth_code(team)
    async with harness.http.get(
        harness.url + "/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers={"Cookie": cookie},
    ) as resp:
        text = await resp.text()
        assert resp.status == 200, text
    return text
