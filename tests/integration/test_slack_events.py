"""Slack events: retries and duplicate deliveries answer once (also across processes sharing a
database), mentions start chats, and the bot ignores itself, other bots and unrelated traffic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.slack import event_body, signed_headers
from tests.integration.slack_support import (
    SIGNING_SECRET,
    SlackHarness,
    make_settings,
    running_slack,
    slack_harness,
)

KEY = "sk-or-v1-test-key-one-0001"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        yield harness


def message(text: str, *, ts: str, thread_ts: str | None = None, user: str = "U1", **extra: object):
    event = {"type": "message", "channel": "C1", "user": user, "text": text, "ts": ts, **extra}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


async def start_thread(h: SlackHarness) -> str:
    await h.command("/chat", "first question")
    [root] = h.slack.posted("C1", top_level=True)
    return root.ts


async def test_retried_event_answers_once(h: SlackHarness) -> None:
    root = await start_thread(h)
    event = message("follow up", ts="1800000000.000001", thread_ts=root)
    first, retry = await asyncio.gather(
        h.event(event, event_id="EvA", settle=False),
        h.event(event, event_id="EvA", retry_num=1, settle=False),
    )
    late_retry = await h.event(event, event_id="EvA", retry_num=2)
    assert {first.status, retry.status, late_retry.status} == {200}
    assert len(h.slack.thread("C1", root)) == 1
    assert len(h.openrouter.chat_requests) == 2  # the /chat and one follow-up
    assert len(await h.usage_rows()) == 2


async def test_mention_in_a_routerbot_thread_answers_once(h: SlackHarness) -> None:
    """Slack sends both ``message`` and ``app_mention`` for such a message."""
    root = await start_thread(h)
    text = "<@UBOTT1> and now?"
    as_message = message(text, ts="1800000000.000002", thread_ts=root)
    as_mention = {**as_message, "type": "app_mention"}
    await asyncio.gather(
        h.event(as_message, event_id="EvM1", settle=False),
        h.event(as_mention, event_id="EvM2", settle=False),
    )
    await h.settle()
    [answer] = h.slack.thread("C1", root)
    assert answer.text.startswith("echo: and now?")
    assert len(await h.usage_rows()) == 2


async def test_mention_starts_a_chat_in_the_thread(h: SlackHarness) -> None:
    mention = {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": "<@UBOTT1> --model openai/gpt-4o-mini what is 2+2?",
        "ts": "1800000000.000100",
    }
    await h.event(mention, event_id="EvX")
    [answer] = h.slack.thread("C1", "1800000000.000100")
    assert answer.text.startswith("echo: what is 2+2?")
    assert "openai/gpt-4o-mini · " in answer.text
    # The mention's thread now holds the conversation.
    await h.event(
        message("and 3+3?", ts="1800000000.000200", thread_ts=mention["ts"]), event_id="EvY"
    )
    assert len(h.slack.thread("C1", mention["ts"])) == 2
    last = h.openrouter.chat_requests[-1].json["messages"]
    assert [m["content"] for m in last] == ["what is 2+2?", "echo: what is 2+2?", "and 3+3?"]


async def test_empty_mention_gets_a_hint(h: SlackHarness) -> None:
    mention = {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": "<@UBOTT1>",
        "ts": "1800000000.000300",
    }
    await h.event(mention, event_id="EvE")
    [hint] = h.slack.ephemerals
    assert hint["user"] == "U1"
    assert "Ask me something" in hint["text"]
    assert h.openrouter.chat_requests == []


@pytest.mark.parametrize(
    "extra",
    [
        {"bot_id": "BOTHER"},
        {"subtype": "bot_message", "bot_id": "BOTHER"},
        {"user": "UBOTT1"},
        {"subtype": "message_changed"},
    ],
)
async def test_bots_and_edits_are_ignored(h: SlackHarness, extra: dict[str, str]) -> None:
    root = await start_thread(h)
    calls = len(h.slack.calls)
    await h.event(message("hi", ts="1800000000.000400", thread_ts=root, **extra))
    assert len(h.slack.calls) == calls
    assert len(h.openrouter.chat_requests) == 1


async def test_unrelated_messages_are_ignored(h: SlackHarness) -> None:
    await h.event(message("just chatting", ts="1800000000.000500"), event_id="Ev1")
    await h.event(
        message("in a human thread", ts="1800000000.000600", thread_ts="1700000999.000100"),
        event_id="Ev2",
    )
    assert h.slack.calls_to("chat.postMessage") == []
    assert h.openrouter.chat_requests == []


async def test_processes_sharing_a_database_answer_once(database_url: str) -> None:
    """Two independent servers (own engines, caches and tasks), one database: the same event
    delivered to both is answered once and charged once."""
    async with slack_harness(database_url, keys=(KEY,)) as h:
        await h.set_key("T1", KEY)
        root = await start_thread(h)
        settings = make_settings(
            database_url,
            h.slack,
            h.openrouter,
            bot_token=h.teams["T1"].bot_token,
            secret_key=h.runtime.settings.routerbot_secret_key.get_secret_value(),  # type: ignore[union-attr]
        )
        async with running_slack(settings) as (other, other_url, _runtime):
            event = message("follow up", ts="1800000000.000700", thread_ts=root)
            body = event_body(event, team_id="T1", event_id="EvShared")
            async with aiohttp.ClientSession() as http:

                async def deliver(url: str, retry: int | None) -> int:
                    headers = signed_headers(body, SIGNING_SECRET, retry_num=retry)
                    headers["Content-Type"] = "application/json"
                    async with http.post(url + "/slack/events", data=body, headers=headers) as r:
                        return r.status

                statuses = await asyncio.gather(
                    deliver(h.url, None), deliver(other_url, None), deliver(other_url, 1)
                )
            assert statuses == [200, 200, 200]
            await asyncio.gather(h.settle(), other.drain())
        assert len(h.slack.thread("C1", root)) == 1
        assert len(await h.usage_rows()) == 2
