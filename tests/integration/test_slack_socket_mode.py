"""Socket Mode end to end: the real ``serve_slack`` connects out to a fake Slack
(``tests/fakes/slack_socket.py``) and every envelope goes through bolt's Socket Mode adapter.

Commands and events arrive as envelopes on the WebSocket; acks come back on it and are timed by
the fake. Background work is awaited with ``SlackFrontend.drain()`` once the ack is in: the
listeners spawn their work before they return, and bolt acks only after they return.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.config import Settings
from bot.core.errors import ConfigurationError
from bot.slack_app import serve_slack
from storage.models import ProviderKey
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import FakeMessage, FakeSlack
from tests.fakes.slack_socket import (
    DEFAULT_APP_TOKEN,
    Ack,
    Delivery,
    FakeSocketMode,
    events_api_envelope,
    interactive_envelope,
    slash_command_envelope,
)
from tests.integration.slack_support import (
    DEFAULT_MODEL,
    SlackHarness,
    make_settings,
    running_slack,
)

KEY = "sk-or-v1-test-key-one-0001"
MEMBER_REFUSAL = "Only workspace admins can"
FOOTER = re.compile(
    r"anthropic/claude-3\.5-sonnet · \d[\d,]* in · \d[\d,]* out · ≈?\$[\d.]+ · \d+\.\d s$"
)
#: Well under Slack's 3 s; the acks measured on loopback are a few milliseconds.
ACK_LIMIT = 1.0


@dataclass
class SocketSent:
    delivery: Delivery
    ack: Ack
    response_url: str = ""

    @property
    def seconds(self) -> float:
        return self.ack.at - self.delivery.at


@dataclass
class SocketHarness:
    h: SlackHarness
    socket: FakeSocketMode

    @property
    def slack(self) -> FakeSlack:
        return self.h.slack

    async def deliver(self, envelope: dict[str, Any], *, settle: bool = True) -> SocketSent:
        """Send an envelope, wait for its ack (by then the listener has spawned its work),
        and by default for all the work it started."""
        delivery = await self.socket.send(envelope)
        ack = await self.socket.wait_ack(delivery.envelope_id)
        if settle:
            await self.h.settle()
        return SocketSent(delivery, ack)

    async def command(
        self,
        command: str,
        text: str = "",
        *,
        user: str = "U1",
        channel: str = "C1",
        trigger_id: str | None = None,
        settle: bool = True,
    ) -> SocketSent:
        response_url = self.slack.response_url()
        envelope = slash_command_envelope(
            command,
            text,
            team_id="T1",
            user_id=user,
            channel_id=channel,
            response_url=response_url,
            trigger_id=trigger_id,
        )
        sent = await self.deliver(envelope, settle=settle)
        sent.response_url = response_url
        return sent

    def reply_text(self, sent: SocketSent) -> str:
        return "\n".join(str(r.get("text", "")) for r in self.slack.responses_to(sent.response_url))


def socket_settings(
    database_url: str, slack: FakeSlack, openrouter: FakeOpenRouter, **kw: Any
) -> Settings:
    """Single workspace in Socket Mode: bot token and app token, no signing secret."""
    settings = make_settings(
        database_url, slack, openrouter, bot_token=slack.add_team("T1").bot_token, **kw
    )
    return settings.model_copy(
        update={"slack_app_token": SecretStr(DEFAULT_APP_TOKEN), "slack_signing_secret": None}
    )


@asynccontextmanager
async def socket_harness(
    tmp_path: Path, *, admins: str = "", with_key: bool = True, **settings_kw: Any
) -> AsyncIterator[SocketHarness]:
    slack = FakeSlack()
    socket = FakeSocketMode(slack)  # before the fake starts: it adds its routes
    async with slack, FakeOpenRouter(valid_keys=(KEY,)) as openrouter:
        settings = socket_settings(
            f"sqlite:///{tmp_path / 'slack.db'}", slack, openrouter, admins=admins, **settings_kw
        )
        for user, admin in (("U1", False), ("U7", False), ("UADMIN", True)):
            slack.add_user("T1", user, admin=admin)
        async with (
            running_slack(settings) as (frontend, url, runtime),
            aiohttp.ClientSession() as http,
        ):
            assert frontend.mode.socket
            await socket.wait_connected()
            harness = SlackHarness(slack, openrouter, runtime, frontend, url, http, {})
            if with_key:
                await harness.set_key("T1", KEY)
            yield SocketHarness(harness, socket)


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[SocketHarness]:
    async with socket_harness(tmp_path) as harness:
        yield harness


def footed(slack: FakeSlack) -> list[FakeMessage]:
    """Messages carrying a cost footer, however the answer was rendered (edits or streaming)."""
    return [m for m in slack.messages.values() if not m.deleted and " out · " in m.text]


def mention(ts: str, text: str = "<@UBOTT1> what is 2+2?") -> dict[str, Any]:
    return {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": "T1",
        "channel_type": "channel",
    }


# -- connecting -------------------------------------------------------------------------------


async def test_connects_with_the_app_token_and_serves_health(s: SocketHarness) -> None:
    [conn] = s.socket.connections
    assert conn.sent[0]["type"] == "hello"
    assert conn.sent[0]["connection_info"] == {"app_id": "AFAKEAPP"}
    await s.socket.wait_for(lambda: conn.pings >= 1)  # slack_sdk pings a new connection
    # One apps.connections.open (Tier 1): the URL that checked the token is the one used.
    [opened] = s.slack.calls_to("apps.connections.open")
    assert opened.token == DEFAULT_APP_TOKEN
    assert opened.error is None
    assert s.socket.refused_tickets == []
    # The bot token does the Web API work; the app token only opens connections.
    bot_token = next(iter(s.slack.teams))
    assert {c.token for c in s.slack.calls if c.method != "apps.connections.open"} == {bot_token}
    async with s.h.http.get(s.h.url + "/healthz") as resp:
        body = await resp.json()
    assert (resp.status, body["status"], body["mode"]) == (
        200,
        "ok",
        "single workspace, Socket Mode",
    )
    async with s.h.http.post(s.h.url + "/slack/events", data=b"{}") as resp:
        assert resp.status == 404  # no request URL in Socket Mode


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("xapp-1-AFAKEAPP-1-unknown", "invalid_auth"),
        ("xoxb-not-an-app-token", "not_allowed_token_type"),
    ],
)
async def test_a_wrong_app_token_fails_start_up_with_a_sentence(
    tmp_path: Path, token: str, error: str
) -> None:
    slack = FakeSlack()
    socket = FakeSocketMode(slack)
    async with slack, FakeOpenRouter() as openrouter:
        settings = socket_settings(f"sqlite:///{tmp_path / 'rb.db'}", slack, openrouter)
        settings = settings.model_copy(update={"slack_app_token": SecretStr(token)})
        with pytest.raises(
            ConfigurationError, match=f"Slack rejected SLACK_APP_TOKEN \\({error}\\)"
        ):
            await serve_slack(settings, host="127.0.0.1", port=0, stop=asyncio.Event())
    assert [(c.method, c.error) for c in slack.calls] == [
        ("auth.test", None),
        ("apps.connections.open", error),
    ]
    assert socket.connections == []


# -- (a) /chat -------------------------------------------------------------------------------


async def test_chat_is_acked_at_once_and_streams_with_a_footer(s: SocketHarness) -> None:
    s.h.openrouter.answer_words = 30
    s.h.openrouter.words_delay = 0.05  # 1.5 s upstream
    sent = await s.command("/chat", "tell me something", user="U1")
    assert sent.ack.payload is None  # an empty ack: the answer is not in it
    assert sent.seconds < ACK_LIMIT, sent.seconds
    assert s.socket.unknown_acks() == []
    [message] = footed(s.slack)
    assert message.channel == "C1"
    assert FOOTER.search(message.text), message.text
    shown = "\n".join(m.text for m in s.slack.posted("C1"))
    assert f"<@U1> asked `{DEFAULT_MODEL}`:\n&gt; tell me something" in shown
    assert "echo: tell me something" in shown
    [row] = await s.h.usage_rows()
    assert (row.outcome, row.channel_id, row.user_id) == ("ok", "C1", "U1")
    assert s.slack.responses_to(sent.response_url) == []
    assert s.socket.connections[-1].other == []  # the client sent nothing but acks


async def test_ack_goes_out_before_any_web_api_call(s: SocketHarness) -> None:
    """With every Web API call taking a second, the ack still comes back at once, and no Web
    API call starts before it (an admin command needs users.info first)."""
    s.slack.latency = 1.0
    sent = await s.command("/models", "remove openai/gpt-4o-mini", user="UADMIN", settle=False)
    assert sent.seconds < 0.5, sent.seconds
    await s.h.settle()
    after = [c for c in s.slack.calls if c.at >= sent.delivery.at]
    assert [c.method for c in after] == ["users.info", "response_url"]
    assert all(c.at > sent.ack.at for c in after)
    assert "Removed `openai/gpt-4o-mini`" in s.reply_text(sent)


async def test_a_burst_of_commands_is_acked_within_the_limit(s: SocketHarness) -> None:
    s.h.openrouter.words_delay = 0.01
    envelopes = [
        slash_command_envelope(
            "/chat",
            f"question {i}",
            team_id="T1",
            user_id="U1",
            response_url=s.slack.response_url(),
        )
        for i in range(20)
    ]
    for envelope in envelopes:
        await s.socket.send(envelope)
    acks = [await s.socket.wait_ack(e["envelope_id"]) for e in envelopes]
    await s.h.settle()
    slowest = max(s.socket.ack_seconds(e["envelope_id"]) for e in envelopes)
    assert slowest < ACK_LIMIT, slowest
    assert all(len(s.socket.acks_for(a.envelope_id)) == 1 for a in acks)
    assert len(footed(s.slack)) == 20
    assert len(await s.h.usage_rows()) == 20


# -- (b) /apikey -----------------------------------------------------------------------------


@pytest.mark.parametrize(("admin", "admins"), [("UADMIN", ""), ("U7", "slack:U7")])
async def test_apikey_set_is_confirmed_privately_and_refused_to_members(
    tmp_path: Path, admin: str, admins: str
) -> None:
    async with socket_harness(tmp_path, admins=admins, with_key=False) as s:
        member = await s.command("/apikey", f"set {KEY}", user="U1")
        assert MEMBER_REFUSAL in s.reply_text(member)
        async with s.h.runtime.db.session() as session:
            assert (await session.scalars(select(ProviderKey))).all() == []

        sent = await s.command("/apikey", f"set {KEY}", user=admin)
        assert sent.seconds < ACK_LIMIT
        [reply] = s.slack.responses_to(sent.response_url)
        assert reply["response_type"] == "ephemeral"
        assert "Saved the OpenRouter key sk-or-v1-…0001" in reply["text"]
        async with s.h.runtime.db.session() as session:
            [row] = (await session.scalars(select(ProviderKey))).all()
        assert KEY.encode() not in row.ciphertext
        # The key went in on the socket and out nowhere: not in an ack, a reply or an API call.
        assert KEY not in json.dumps([a.payload for a in s.socket.acks])
        assert KEY not in json.dumps(s.slack.responses)
        assert KEY not in json.dumps([c.args for c in s.slack.calls], default=str)
        # The member's refusal needs users.info; the admin's only without ROUTERBOT_ADMINS.
        assert len(s.slack.calls_to("users.info")) == (1 if admins else 2)


async def test_key_form_errors_travel_in_the_ack(s: SocketHarness) -> None:
    """A view submission's ack carries ``response_action`` (accepts_response_payload)."""
    await s.command("/apikey", "", user="UADMIN", trigger_id="trig-admin")
    [view] = s.slack.views
    response_url = s.slack.response_url()

    def submission(key: str) -> dict[str, Any]:
        metadata = {**json.loads(view["private_metadata"]), "r": response_url}
        return {
            "type": "view_submission",
            "team": {"id": "T1", "domain": "t1"},
            "user": {"id": "UADMIN", "team_id": "T1"},
            "api_app_id": "AFAKEAPP",
            "trigger_id": "trig-submit",
            "view": {
                "id": view["id"],
                "type": "modal",
                "callback_id": view["callback_id"],
                "private_metadata": json.dumps(metadata),
                "state": {"values": {"key": {"key": {"type": "plain_text_input", "value": key}}}},
            },
        }

    bad = await s.deliver(interactive_envelope(submission("not a key")))
    assert bad.ack.payload == {
        "response_action": "errors",
        "errors": {"key": "That does not look like an API key."},
    }
    assert s.slack.responses_to(response_url) == []

    good = await s.deliver(interactive_envelope(submission(KEY)))
    assert good.ack.payload is None
    assert good.seconds < ACK_LIMIT
    [reply] = s.slack.responses_to(response_url)
    assert "Saved the OpenRouter key sk-or-v1-…0001" in reply["text"]


# -- (c) events and re-deliveries ------------------------------------------------------------


async def test_mention_is_answered_once_when_redelivered(s: SocketHarness) -> None:
    event = mention("1800000000.000100")
    s.slack.user_message("C1", event["ts"], event["text"])
    s.h.openrouter.words_delay = 0.02

    first = await s.deliver(events_api_envelope(event, team_id="T1", event_id="Ev1"), settle=False)
    # Slack re-delivers (a new envelope, the same event) while the answer is still streaming,
    # and once more after it is done.
    retry = await s.deliver(
        events_api_envelope(
            event, team_id="T1", event_id="Ev1", retry_attempt=1, retry_reason="timeout"
        )
    )
    late = await s.deliver(
        events_api_envelope(
            event, team_id="T1", event_id="Ev1", retry_attempt=2, retry_reason="timeout"
        )
    )
    assert (
        len({first.delivery.envelope_id, retry.delivery.envelope_id, late.delivery.envelope_id})
        == 3
    )
    for sent in (first, retry, late):
        assert sent.ack.payload is None
        assert sent.seconds < ACK_LIMIT
    [answer] = footed(s.slack)
    assert (answer.channel, answer.thread_ts) == ("C1", event["ts"])
    assert "echo: what is 2+2?" in answer.text
    assert len(s.h.openrouter.chat_requests) == 1
    assert len(await s.h.usage_rows()) == 1


async def test_thread_reply_continues_the_chat(s: SocketHarness) -> None:
    await s.command("/chat", "my name is Ada")
    [root] = s.slack.posted("C1", top_level=True)
    reply = {
        "type": "message",
        "channel": "C1",
        "user": "U1",
        "text": "what is my name?",
        "ts": f"{float(root.ts) + 5:.6f}",
        "thread_ts": root.ts,
        "channel_type": "channel",
    }
    s.slack.user_message("C1", reply["ts"], reply["text"], root.ts)
    await s.deliver(events_api_envelope(reply, team_id="T1", event_id="Ev2"))
    [answer] = [m for m in footed(s.slack) if m.thread_ts == root.ts]
    assert "echo: what is my name?" in answer.text
    assert [m["content"] for m in s.h.openrouter.chat_requests[-1].json["messages"]] == [
        "my name is Ada",
        "echo: my name is Ada",
        "what is my name?",
    ]


# -- (d) reconnecting ------------------------------------------------------------------------


async def _answered_after(s: SocketHarness, prompt: str) -> None:
    sent = await s.command("/chat", prompt)
    assert sent.seconds < ACK_LIMIT
    assert sent.delivery.connection == s.socket.connections[-1].index
    assert any(f"echo: {prompt}" in m.text for m in footed(s.slack))


async def test_reconnects_after_a_refresh_disconnect(s: SocketHarness) -> None:
    await _answered_after(s, "before")
    opens = s.socket.opens
    old = await s.socket.disconnect("refresh_requested")
    new = await s.socket.wait_connected(count=2)
    assert (old.closed_by, new.open) == ("client", True)  # it moved when told to
    assert s.socket.opens == opens + 1
    assert new.sent[0]["type"] == "hello"
    await _answered_after(s, "after")
    assert len(s.socket.connections) == 2
    assert len(s.socket.open_connections) == 1
    assert s.socket.refused_tickets == []
    assert len(await s.h.usage_rows()) == 2


async def test_reconnects_after_the_socket_drops(s: SocketHarness) -> None:
    """No disconnect message at all (a network drop): the close alone triggers a reconnect."""
    opens = s.socket.opens
    await s.socket.drop()
    new = await s.socket.wait_connected(count=2)
    assert new.open
    assert s.socket.opens == opens + 1
    await _answered_after(s, "after a drop")


async def test_shutdown_closes_the_socket_and_finishes_answers(tmp_path: Path) -> None:
    """Stopping mid-answer: the socket is closed by the bot at once (no hang in close_async)
    and the answer in flight still gets its footer."""
    async with socket_harness(tmp_path) as s:
        s.h.openrouter.answer_words = 20
        s.h.openrouter.words_delay = 0.05  # about 1 s to stream
        await s.command("/chat", "slowly", settle=False)
        conn = s.socket.connections[-1]
        started = time.monotonic()
    stopped = time.monotonic() - started
    assert stopped < 5, stopped
    assert conn.closed_by == "client"
    [message] = footed(s.slack)
    assert "echo: slowly" in message.text
    assert FOOTER.search(message.text), message.text


# -- (e) secrets -----------------------------------------------------------------------------


async def test_tokens_never_reach_logs_or_stdout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="slack_sdk.web.routerbot")
    async with socket_harness(tmp_path, with_key=False) as s:
        bot_token = next(iter(s.slack.teams))
        await s.command("/apikey", f"set {KEY}", user="UADMIN")
        await s.command("/chat", "hello")
        event = mention("1800000000.000200")
        s.slack.user_message("C1", event["ts"], event["text"])
        await s.deliver(events_api_envelope(event, team_id="T1", event_id="Ev3"))
        await s.socket.disconnect()
        await s.socket.wait_connected(count=2)
        await s.command("/models", "")
    out, err = capsys.readouterr()
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    # Debug logging really was on (the Web API client logs each call at DEBUG).
    assert any(
        r.levelno == logging.DEBUG and r.name == "slack_sdk.web.routerbot" for r in caplog.records
    )
    for secret in (DEFAULT_APP_TOKEN, bot_token, KEY):
        assert secret not in logged
        assert secret not in out
        assert secret not in err
