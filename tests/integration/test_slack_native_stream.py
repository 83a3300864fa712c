"""Answers streamed with Slack's native methods (``SLACK_STREAMING=auto``): the question in the
channel and the answer streamed into its thread, mentions and follow-ups in their thread, long
answers in several streamed parts, provider errors, the fall-back to ``chat.update`` where a
workspace cannot stream, streams that end on Slack's side, and ``SLACK_STREAMING=update``."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.slack_app.text import escape
from tests.fakes.openrouter import Fault
from tests.fakes.slack import FakeMessage
from tests.integration.slack_support import DEFAULT_MODEL, SlackHarness, slack_harness

KEY = "sk-or-v1-test-key-one-0001"
FOOTER = re.compile(
    r"\n\nanthropic/claude-3\.5-sonnet · \d[\d,]* in · \d[\d,]* out · ≈?\$[\d.]+ · \d+\.\d s$"
)
ANY_FOOTER = re.compile(r"\n\n[\w./:-]+ · .* · \d+\.\d s$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(
        f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,), streaming="auto"
    ) as harness:
        await harness.set_key("T1", KEY)
        yield harness


def header_of(prompt: str, user: str = "U1") -> str:
    return f"<@{user}> asked `{DEFAULT_MODEL}`:\n&gt; {escape(prompt)}"


def question_and_answers(h: SlackHarness) -> tuple[FakeMessage, list[FakeMessage]]:
    [question] = h.slack.posted("C1", top_level=True)
    return question, h.slack.thread("C1", question.ts)


def appends_per_message(h: SlackHarness) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for call in h.slack.calls_to("chat.appendStream"):
        if call.error is None:
            times.setdefault(str(call.args["ts"]), []).append(call.at)
    return times


def balanced(text: str) -> bool:
    return sum(1 for line in text.splitlines() if FENCE.match(line)) % 2 == 0


async def test_chat_streams_natively_into_the_question_thread(h: SlackHarness) -> None:
    h.openrouter.answer_words = 40
    h.openrouter.words_delay = 0.06  # about 2.4 s upstream: a start, appends, then the stop
    prompt = "tell me & <!channel> something"
    sent = await h.command("/chat", prompt, user="U1")
    assert sent.seconds < 0.5
    question, [answer] = question_and_answers(h)
    assert question.text == header_of(prompt)
    assert question.history == [question.text], "the question is posted once, never edited"
    assert answer.thread_ts == question.ts

    [start] = h.slack.calls_to("chat.startStream")
    assert start.args["thread_ts"] == question.ts
    assert (start.args["recipient_user_id"], start.args["recipient_team_id"]) == ("U1", "T1")
    assert answer.history[0] == start.args["markdown_text"]
    appends = appends_per_message(h)[answer.ts]
    assert appends, "text was appended while the model wrote"
    assert all(b - a >= 0.95 for a, b in itertools.pairwise([start.at, *appends]))
    assert len(h.slack.calls_to("chat.stopStream")) == 1
    assert not answer.streaming

    expected = escape(h.openrouter.answer_for([{"role": "user", "content": prompt}]))
    assert answer.text.startswith("echo: tell me &amp; &lt;!channel&gt; something")
    assert FOOTER.search(answer.text), answer.text
    assert FOOTER.sub("", answer.text) == expected
    assert h.slack.calls_to("chat.update") == []
    assert h.slack.update_violations() == 0
    [row] = await h.usage_rows()
    assert (row.outcome, row.channel_id, row.user_id) == ("ok", "C1", "U1")
    assert h.replies(sent) == []


async def test_quick_answer_is_one_post_in_the_thread(h: SlackHarness) -> None:
    h.openrouter.script(answer="Hi there")
    await h.command("/chat", "hello")
    question, [answer] = question_and_answers(h)
    assert answer.text.startswith("Hi there\n\n")
    assert FOOTER.search(answer.text)
    assert len(h.slack.calls_to("chat.update")) == 0


async def test_mention_is_answered_natively_in_its_thread(h: SlackHarness) -> None:
    mention = {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": "<@UBOTT1> what is 2+2?",
        "ts": "1800000000.000100",
    }
    h.openrouter.answer_words = 20
    h.openrouter.words_delay = 0.05
    await h.event(mention, event_id="EvMention")
    [answer] = h.slack.thread("C1", mention["ts"])
    assert answer.text.startswith("echo: what is 2+2?")
    assert FOOTER.search(answer.text)
    [start] = h.slack.calls_to("chat.startStream")
    assert start.args["thread_ts"] == mention["ts"]
    assert start.args["recipient_user_id"] == "U1"
    assert h.slack.posted("C1", top_level=True) == []
    assert h.slack.update_violations() == 0


async def test_thread_follow_up_continues_the_conversation(h: SlackHarness) -> None:
    h.openrouter.words_delay = 0.2
    await h.command("/chat", "--model openai/gpt-4o-mini my name is Ada")
    question, [first] = question_and_answers(h)
    follow_up = {
        "type": "message",
        "channel": "C1",
        "user": "U1",
        "text": "what is my name?",
        "ts": f"{float(question.ts) + 5:.6f}",
        "thread_ts": question.ts,
        "channel_type": "channel",
    }
    await h.event(follow_up, event_id="EvFollow")

    _, second = h.openrouter.chat_requests
    assert second.json["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    _, answers = question_and_answers(h)
    assert [a.ts for a in answers[:1]] == [first.ts] and len(answers) == 2
    assert answers[1].text.startswith("echo: what is my name?")
    assert "openai/gpt-4o-mini · " in answers[1].text
    starts = h.slack.calls_to("chat.startStream")
    assert [s.args["thread_ts"] for s in starts] == [question.ts, question.ts]
    rows = await h.usage_rows()
    assert rows[0].conversation_id == rows[1].conversation_id


async def test_long_answer_streams_in_parts_with_fences_intact(h: SlackHarness) -> None:
    prose = " ".join(f"word{i}" for i in range(500))
    code = "\n".join(f"    line_{i} = {i} * 2" for i in range(200))
    answer = f"{prose}\n\n```python\n{code}\n```\n\nafter & done {prose}"
    h.openrouter.script(answer=answer)
    h.openrouter.words_delay = 0.001  # a few seconds: parts are streamed while it writes
    await h.command("/chat", "write a lot")
    _, parts = question_and_answers(h)
    assert len(parts) >= 3
    assert len(h.slack.calls_to("chat.startStream")) >= 2, "later parts are streams too"
    for part in parts:
        assert len(part.text) <= 3500
        assert balanced(part.text), part.text
        assert not part.streaming
    assert all(not ANY_FOOTER.search(p.text) for p in parts[:-1])
    assert FOOTER.search(parts[-1].text)
    # A part cut inside the code block closes it, and the next reopens it as python.
    inside = [i for i, p in enumerate(parts[:-1]) if p.text.endswith("```") and "line_" in p.text]
    assert inside, [p.text[-40:] for p in parts]
    assert all(parts[i + 1].text.startswith("```python\n") for i in inside)
    # Without the added fence lines and the footer, the parts are the answer, in order.
    joined = ""
    for index, part in enumerate(parts):
        text = FOOTER.sub("", part.text)
        if index > 0 and index - 1 in inside:
            text = text.removeprefix("```python\n")
        if index in inside:
            text = text.removesuffix("```")  # cut at a line end: the fence needs no newline
        joined += text
    assert joined == escape(answer)
    assert h.slack.update_violations() == 0


async def test_provider_error_mid_stream_keeps_the_partial_answer(h: SlackHarness) -> None:
    h.openrouter.script(
        Fault.error_chunk(after=6, code=502, message="upstream died"),
        answer="Here:\n```python\nx = 1\ny = 2\nz = 3\nw = 4",
    )
    h.openrouter.words_delay = 0.3  # the stream starts before the error
    await h.command("/chat", "count")
    _, [answer] = question_and_answers(h)
    assert len(h.slack.calls_to("chat.startStream")) == 1
    assert answer.text.startswith("Here:\n```python\nx = 1")
    assert "w = 4" not in answer.text
    assert balanced(answer.text.split("⚠", 1)[0]), answer.text
    assert "```\n\n⚠ The answer was cut off" in answer.text
    assert ANY_FOOTER.search(answer.text)
    assert h.slack.calls_to("chat.update") == []
    [row] = await h.usage_rows()
    assert row.outcome == "cut_off"


async def test_insufficient_credits_is_one_sentence_in_the_thread(h: SlackHarness) -> None:
    h.openrouter.script(Fault.http(402, message="Insufficient credits"))
    await h.command("/chat", "hello")
    _, [answer] = question_and_answers(h)
    assert answer.text.startswith("⚠ ") and "Nothing was charged." in answer.text
    assert h.slack.calls_to("chat.startStream") == []


async def test_workspace_without_native_streaming_falls_back_to_chat_update(
    h: SlackHarness,
) -> None:
    h.slack.native_streaming_unavailable.add("T1")
    h.openrouter.answer_words = 30
    h.openrouter.words_delay = 0.05
    await h.command("/chat", "first")
    [refused] = h.slack.calls_to("chat.startStream")
    assert refused.error == "feature_not_enabled"
    # The answer continues in the question message, exactly as with chat.update streaming.
    question, thread = question_and_answers(h)
    assert thread == []
    assert question.history[0] == header_of("first")
    assert question.text.startswith(header_of("first") + "\n\necho: first")
    assert FOOTER.search(question.text)
    expected = escape(h.openrouter.answer_for([{"role": "user", "content": "first"}]))
    assert FOOTER.sub("", question.text) == f"{header_of('first')}\n\n{expected}"

    await h.command("/chat", "second")
    assert len(h.slack.calls_to("chat.startStream")) == 1, "the refusal is remembered"
    second = h.slack.posted("C1", top_level=True)[-1]
    assert second.history[0] == header_of("second") + "\n\n_…_"
    assert FOOTER.search(second.text)
    assert h.slack.update_violations() == 0
    assert [r.outcome for r in await h.usage_rows()] == ["ok", "ok"]


async def test_stream_ended_by_slack_is_finished_with_chat_update(h: SlackHarness) -> None:
    h.slack.stream_ttl = 1.5
    h.openrouter.answer_words = 80
    h.openrouter.words_delay = 0.04  # about 3.2 s: the stream ends on Slack's side meanwhile
    await h.command("/chat", "go on")
    _, [answer] = question_and_answers(h)
    refused = [c for c in h.slack.calls if c.error == "message_not_in_streaming_state"]
    assert refused, "an append met the ended stream"
    assert h.slack.calls_to("chat.update"), "the rest came by chat.update"
    expected = escape(h.openrouter.answer_for([{"role": "user", "content": "go on"}]))
    assert FOOTER.search(answer.text)
    assert FOOTER.sub("", answer.text) == expected
    assert h.slack.update_violations() == 0
    [row] = await h.usage_rows()
    assert row.outcome == "ok"


async def test_update_setting_never_streams_natively(tmp_path: Path) -> None:
    async with slack_harness(
        f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,), streaming="update"
    ) as h:
        await h.set_key("T1", KEY)
        h.openrouter.answer_words = 20
        h.openrouter.words_delay = 0.05
        await h.command("/chat", "hello")
        mention = {
            "type": "app_mention",
            "channel": "C1",
            "user": "U1",
            "text": "<@UBOTT1> and you?",
            "ts": "1800000000.000200",
        }
        await h.event(mention, event_id="EvM")
        assert h.slack.calls_to("chat.startStream") == []
        assert h.slack.calls_to("chat.appendStream") == []
        [question] = h.slack.posted("C1", top_level=True)
        assert question.text.startswith(header_of("hello") + "\n\necho: hello")
        [answer] = h.slack.thread("C1", mention["ts"])
        assert answer.text.startswith("echo: and you?")
        assert h.slack.calls_to("chat.update")


async def test_channel_without_the_bot_costs_nothing(h: SlackHarness) -> None:
    h.slack.not_in_channel.add("C9")
    sent = await h.command("/chat", "hello", channel="C9")
    assert "invite me with `/invite @routerbot`" in h.reply_text(sent)
    assert "Nothing was charged." in h.reply_text(sent)
    assert h.openrouter.chat_requests == []
    assert h.slack.calls_to("chat.startStream") == []
    assert await h.usage_rows() == []
