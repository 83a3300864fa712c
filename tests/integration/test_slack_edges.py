"""Slack payloads with hostile text, through the real bolt app over HTTP: NULs and control
characters in a command, lone surrogates in an event's JSON, keys pasted into the form with
invisible characters. Each is cleaned where it arrives and answered; nothing raises."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.slack import signed_headers
from tests.integration.slack_support import SIGNING_SECRET, SlackHarness, slack_harness
from tests.integration.test_slack_commands import _submission

KEY = "sk-or-v1-test-key-one-0001"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        yield harness


def prompts(h: SlackHarness) -> list[str]:
    return [r.json["messages"][-1]["content"] for r in h.openrouter.chat_requests]


async def test_a_command_with_nul_and_escape_characters_is_cleaned(h: SlackHarness) -> None:
    await h.command("/chat", "caf\u00e9\x00 \x1b[2Jclear\x85")
    assert prompts(h) == ["caf\u00e9 [2Jclear"]
    [root] = h.slack.posted("C1", top_level=True)
    assert "echo: caf\u00e9 [2Jclear" in root.text


async def test_lone_surrogates_and_nul_in_an_event_reach_the_provider_cleaned(
    h: SlackHarness,
) -> None:
    mention = {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": "<@UBOTT1> caf\udce9 \ud83d\ude00 na\x00ive",
        "ts": "1800000000.000100",
    }
    await h.event(mention, event_id="EvHostile")
    assert prompts(h) == ["caf\ufffd \U0001f600 naive"]
    [answer] = h.slack.thread("C1", mention["ts"])
    assert answer.text.startswith("echo: caf\ufffd \U0001f600 naive")
    follow_up = {
        "type": "message",
        "channel": "C1",
        "user": "U1",
        "text": "more\udfff\x00",
        "ts": "1800000000.000200",
        "thread_ts": mention["ts"],
    }
    await h.event(follow_up, event_id="EvHostile2")
    assert prompts(h)[-1] == "more\ufffd"
    assert len(h.slack.thread("C1", mention["ts"])) == 2


@pytest.mark.parametrize("pasted", [f"{KEY}\u200b", f"\u201c{KEY}\u201d", f" `{KEY}` "])
async def test_the_key_form_cleans_what_copying_added(h: SlackHarness, pasted: str) -> None:
    await h.command("/apikey", "", user="UADMIN")
    response_url = h.slack.response_url()
    sent = await h.interaction(_submission(h, pasted, user="UADMIN", response_url=response_url))
    assert sent.status == 200 and not sent.body
    await h.settle()
    [reply] = h.slack.responses_to(response_url)
    assert "Saved the OpenRouter key sk-or-v1-…0001" in reply["text"]
    checks = [r for r in h.openrouter.requests if r.path.endswith("/key")]
    assert checks[-1].headers["Authorization"] == f"Bearer {KEY}"


async def test_the_key_form_refuses_inline_a_key_no_header_can_carry(h: SlackHarness) -> None:
    await h.command("/apikey", "", user="UADMIN")
    response_url = h.slack.response_url()
    sent = await h.interaction(
        _submission(h, "sk-or-v1-caf\u00e9-0001", user="UADMIN", response_url=response_url)
    )
    assert json.loads(sent.body) == {
        "response_action": "errors",
        "errors": {"key": "That does not look like an API key."},
    }


async def test_a_body_that_is_not_utf8_is_refused_as_unsigned(h: SlackHarness) -> None:
    body = b"token=x&text=caf\xe9"
    headers = signed_headers(body.decode("latin-1"), SIGNING_SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    async with h.http.post(h.url + "/slack/events", data=body, headers=headers) as resp:
        assert resp.status == 401
