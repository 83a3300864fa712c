"""routerbot as a Slack AI app, over real HTTP against the fake Slack: suggested prompts, titled
threads, a status until the first text, answers streamed natively with the footer, follow-ups,
Slack's Stop (in this process and from another one), commands sent as messages, and the
budgets, allowlist and ledger applying to direct messages as everywhere."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.core.replies import Invocation
from bot.core.stopping import STOPPED
from bot.slack_app.assistant import thread_title
from bot.slack_app.prompts import DEFAULT_PROMPTS, TITLE, suggested_prompts
from storage.models import utcnow
from tests.chart_reader import read_chart
from tests.fakes.openrouter import Fault
from tests.fakes.slack import FakeMessage, event_body, signed_headers
from tests.integration.slack_support import (
    DEFAULT_MODEL,
    SIGNING_SECRET,
    SlackHarness,
    running_slack,
    slack_harness,
)
from tests.integration.spend_support import seed

KEY = "sk-or-v1-test-key-one-0001"
DM = "D1"
FOOTER = re.compile(r"\n\nanthropic/claude-3\.5-sonnet · [\d,]+ in · [\d,]+ out · ≈?\$[\d.]+ · ")
_ts = itertools.count(1)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(
        f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,), streaming="auto"
    ) as harness:
        await harness.set_key("T1", KEY)
        yield harness


def dm(text: str, *, thread_ts: str | None = None, user: str = "U1") -> dict[str, Any]:
    ts = f"1800000{next(_ts):03d}.000100"
    event = {
        "type": "message",
        "channel": DM,
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def answers(h: SlackHarness, root: str) -> list[FakeMessage]:
    return h.slack.thread(DM, root)


def first_call(h: SlackHarness, method: str, **match: str) -> float:
    calls = [
        c
        for c in h.slack.calls_to(method)
        if c.error is None and all(c.args.get(k) == v for k, v in match.items())
    ]
    assert calls, f"no successful {method} with {match}"
    return calls[0].at


# -- suggested prompts ------------------------------------------------------------------------


async def test_opening_the_messages_tab_sets_the_suggested_prompts(h: SlackHarness) -> None:
    await h.event({"type": "app_home_opened", "user": "U1", "channel": DM, "tab": "messages"})
    [call] = h.slack.suggested_prompts
    assert call["channel_id"] == DM and call["thread_ts"] is None  # agent view: no thread
    assert call["title"] == TITLE
    assert call["prompts"] == [{"title": p.title, "message": p.message} for p in DEFAULT_PROMPTS]
    assert len(call["prompts"]) <= 4
    # The assistant view's new threads get them too, on the thread.
    thread = {"user_id": "U1", "channel_id": DM, "thread_ts": "1800000999.000100"}
    h.slack.user_message(DM, thread["thread_ts"], "")
    await h.event({"type": "assistant_thread_started", "assistant_thread": thread}, event_id="E2")
    assert h.slack.suggested_prompts[-1]["thread_ts"] == thread["thread_ts"]


def test_the_prompts_setting_replaces_or_removes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    custom = '[{"title": "Standup", "message": "Turn my notes into a standup update."}]'
    monkeypatch.setenv("SLACK_SUGGESTED_PROMPTS", custom)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert suggested_prompts(settings) == [
        {"title": "Standup", "message": "Turn my notes into a standup update."}
    ]
    monkeypatch.setenv("SLACK_SUGGESTED_PROMPTS", "[]")
    assert suggested_prompts(Settings(_env_file=None)) == []  # type: ignore[call-arg]
    monkeypatch.setenv("SLACK_SUGGESTED_PROMPTS", "[" + ",".join([custom[1:-1]] * 5) + "]")
    with pytest.raises(ValueError, match="at most 4"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_thread_titles_are_the_first_line_cut_at_a_word() -> None:
    assert thread_title("What is a monad?\nIn Haskell.") == "What is a monad?"
    long = "Explain the difference between optimistic and pessimistic locking in databases"
    title = thread_title(long)
    assert title.endswith("…") and len(title) <= 60 and long.startswith(title[:-1])


# -- a chat in a direct message ---------------------------------------------------------------


async def test_a_direct_message_is_a_titled_streamed_charged_chat(h: SlackHarness) -> None:
    h.openrouter.answer_words = 30
    h.openrouter.words_delay = 0.05  # about 1.5 s: a status first, then a stream
    first = dm("What is a monad? Keep it short.")
    await h.event(first)
    root = first["ts"]

    assert h.slack.titles[(DM, root)] == "What is a monad? Keep it short."
    [status] = [s for s in h.slack.status_calls if s.status]
    assert (status.channel, status.thread_ts) == (DM, root)
    assert status.loading_messages and len(status.loading_messages) <= 10
    assert status.at < first_call(h, "chat.startStream", channel=DM, thread_ts=root)
    assert (DM, root) not in h.slack.thread_status, "the status clears with the answer"

    [answer] = answers(h, root)
    assert answer.text.startswith("echo: What is a monad? Keep it short.")
    assert FOOTER.search(answer.text), answer.text
    assert not answer.streaming

    [row] = await h.usage_rows()
    assert (row.channel_id, row.user_id, row.outcome) == (DM, "U1", "ok")
    assert row.cost_nano and row.cost_nano > 0

    # A reply in the thread continues the conversation; the title stays.
    h.openrouter.words_delay = 0.0
    await h.event(dm("And in one sentence?", thread_ts=root), event_id="E2")
    request = h.openrouter.chat_requests[-1].json
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"]
    assert len(h.slack.calls_to("assistant.threads.setTitle")) == 1
    assert len(answers(h, root)) == 2 and FOOTER.search(answers(h, root)[-1].text)
    assert [r.channel_id for r in await h.usage_rows()] == [DM, DM]


async def test_a_chat_refused_by_a_budget_costs_nothing_and_clears_the_status(
    h: SlackHarness,
) -> None:
    admin = Invocation("slack", "T1", DM, "UADMIN", is_admin=True)
    await h.runtime.service.spend.set_budget(admin, Decimal("0.01"), channel=False)
    await seed(h.runtime, Invocation("slack", "T1", "C1", "U2"), "0.02", when=utcnow())
    message = dm("Will this be answered?")
    await h.event(message)
    [refusal] = h.slack.ephemerals
    assert refusal["channel"] == DM and refusal["user"] == "U1"
    assert "budget" in refusal["text"] and "/budget set" in refusal["text"]
    assert not h.openrouter.chat_requests
    assert len(await h.usage_rows()) == 1  # the seeded one only
    assert (DM, message["ts"]) not in h.slack.thread_status
    # A model outside the allowlist is refused the same way.
    await h.event(dm("/chat --model openai/o9-ultra hello"), event_id="E2")
    assert "not allowed in this workspace" in h.slack.ephemerals[-1]["text"]


# -- commands sent as messages ----------------------------------------------------------------


async def test_prompts_that_are_commands_are_answered_by_routerbot(h: SlackHarness) -> None:
    models = dm("/models")
    await h.event(models)
    [reply] = answers(h, models["ts"])
    assert f"`{DEFAULT_MODEL}`" in reply.text and "default" in reply.text
    assert not h.openrouter.chat_requests

    await seed(h.runtime, Invocation("slack", "T1", DM, "U1"), "0.30", when=utcnow())
    costs = dm("/costs month")
    await h.event(costs, event_id="E2")
    [text, chart] = answers(h, costs["ts"])
    assert text.text.startswith("Spend in this channel for ")
    [file_id] = chart.files
    shared = h.slack.files[file_id]
    assert (shared.channel, shared.thread_ts) == (DM, costs["ts"])
    assert len(read_chart(shared.data or b"").bars) == 1

    apikey = dm("/apikey set sk-or-v1-should-not-be-here")
    await h.event(apikey, event_id="E3")
    [reply] = answers(h, apikey["ts"])
    assert "/apikey" in reply.text and "message box" in reply.text
    # "/etc/hosts" is not a routerbot command: it is a question for the model.
    question = dm("/etc/hosts: what is this file for?")
    await h.event(question, event_id="E4")
    assert answers(h, question["ts"])[0].text.startswith("echo: /etc/hosts")


# -- Stop -------------------------------------------------------------------------------------


async def _streaming(h: SlackHarness, root: str) -> FakeMessage:
    await h.slack.wait_for(lambda: any(len(m.history) > 1 for m in answers(h, root)), timeout=10)
    [answer] = answers(h, root)
    assert answer.streaming
    return answer


def stop_event(h: SlackHarness, root: str) -> dict[str, Any]:
    return {
        "type": "agent_session_stopped",
        "channel": DM,
        "thread_ts": root,
        "streaming_message_ts": h.slack.stop_session(DM, root),
        "user": "U1",
        "event_ts": "1800009999.000100",
    }


async def _check_stopped(h: SlackHarness, root: str, full_words: int) -> None:
    [answer] = answers(h, root)
    body, _, footer = answer.text.rpartition("\n\n")
    assert body.endswith(STOPPED)
    partial = body.removesuffix(STOPPED).strip()
    assert partial.startswith("echo: Write at length") and len(partial.split()) < full_words
    assert re.fullmatch(r"anthropic/claude-3\.5-sonnet · cost unknown · \d+\.\d s", footer)
    [row] = await h.usage_rows()
    assert (row.channel_id, row.user_id, row.outcome) == (DM, "U1", "cancelled")
    assert row.cost_nano is None and row.cost_source == "unknown"
    # The stopped turn is kept: a follow-up carries it.
    h.openrouter.words_delay = 0.0
    h.openrouter.answer_words = None
    await h.event(dm("Go on, briefly.", thread_ts=root), event_id="E-after")
    roles = [m["role"] for m in h.openrouter.chat_requests[-1].json["messages"]]
    assert roles == ["user", "assistant", "user"]


async def test_stop_ends_the_answer_keeping_its_text_and_records_the_chat(
    h: SlackHarness,
) -> None:
    h.openrouter.answer_words = 400
    h.openrouter.words_delay = 0.02  # eight seconds if nobody stops it
    message = dm("Write at length about tea.")
    await h.event(message, settle=False)
    root = message["ts"]
    await _streaming(h, root)
    await h.event(stop_event(h, root), event_id="EvStop")
    await _check_stopped(h, root, 400)


async def test_stop_reaches_an_answer_streamed_by_another_process(
    h: SlackHarness, tmp_path: Path
) -> None:
    h.openrouter.answer_words = 400
    h.openrouter.words_delay = 0.02
    message = dm("Write at length about coffee.")
    await h.event(message, settle=False)
    root = message["ts"]
    await _streaming(h, root)
    # The Stop event lands on a second process sharing the database (a load balancer).
    async with running_slack(h.runtime.settings) as (_other, other_url, _runtime):
        body = event_body(stop_event(h, root), team_id="T1", event_id="EvStop2")
        headers = {**signed_headers(body, SIGNING_SECRET), "Content-Type": "application/json"}
        async with h.http.post(other_url + "/slack/events", data=body, headers=headers) as resp:
            assert resp.status == 200
        await _other.drain()
    await h.settle()
    started = h.slack.calls_to("chat.startStream")[0].at
    assert h.slack.calls[-1].at - started < 6, "stopped well before the answer's end"
    await _check_stopped(h, root, 400)


async def test_stop_before_the_first_words_is_caught_when_they_arrive(h: SlackHarness) -> None:
    h.openrouter.answer_words = 50
    h.openrouter.script(Fault.keepalive(after=0, seconds=0.8))  # it "thinks" before writing
    message = dm("Write at length about water.")
    await h.event(message, settle=False)
    root = message["ts"]
    await h.slack.wait_for(lambda: any(s.status for s in h.slack.status_calls), timeout=10)
    # No stream yet: Stop comes from another process, so only the database can carry it.
    async with h.runtime.db.session() as session:
        from storage.events import raise_signal

        await raise_signal(session, platform="slack", key=f"stop:T1:{DM}:{root}")
    await h.settle()
    assert not h.slack.calls_to("chat.startStream"), "nothing streamed after the Stop"
    [answer] = answers(h, root)
    assert "Stopped at your request before the model wrote anything" in answer.text
    [row] = await h.usage_rows()
    assert row.outcome == "cancelled" and row.cost_nano is None
