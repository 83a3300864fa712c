"""``/chat`` on Slack: the streamed answer, the footer, long answers, thread follow-ups with
history from our database, provider errors, and Slack's own 429s and 5xx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.openrouter import Fault
from tests.integration.slack_support import DEFAULT_MODEL, SlackHarness, slack_harness

KEY = "sk-or-v1-test-key-one-0001"
FOOTER = re.compile(
    r"anthropic/claude-3\.5-sonnet · \d[\d,]* in · \d[\d,]* out · ≈?\$[\d.]+ · \d+\.\d s$"
)
ANY_FOOTER = re.compile(r"\n\n[\w./:-]+ · .* · \d+\.\d s$")


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        yield harness


def reply_in_thread(ts: str, text: str, *, user: str = "U1", channel: str = "C1") -> dict:
    return {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": f"{float(ts) + 5:.6f}",
        "thread_ts": ts,
        "channel_type": "channel",
    }


async def test_chat_streams_the_answer_with_a_footer(h: SlackHarness) -> None:
    h.openrouter.answer_words = 30
    h.openrouter.words_delay = 0.05  # 1.5 s upstream: room for one interim edit
    sent = await h.command("/chat", "tell me & <!channel> something", user="U1")
    assert sent.seconds < 0.5
    [message] = h.slack.posted("C1")
    assert message.thread_ts is None
    header = f"<@U1> asked `{DEFAULT_MODEL}`:\n&gt; tell me &amp; &lt;!channel&gt; something"
    assert message.history[0] == header + "\n\n_…_"
    assert len(message.history) >= 3, "posted, edited while streaming, then final"
    assert any(text.endswith(" ▍") for text in message.history[1:-1])
    final = message.text
    assert final.startswith(header + "\n\necho: tell me")
    assert FOOTER.search(final), final
    assert h.slack.update_violations() == 0
    [row] = await h.usage_rows()
    assert (row.outcome, row.channel_id, row.user_id) == ("ok", "C1", "U1")
    assert h.replies(sent) == []


async def test_model_output_cannot_ping_the_channel(h: SlackHarness) -> None:
    h.openrouter.script(answer="Hey <!channel> and <@U999> & friends")
    await h.command("/chat", "say hi")
    [message] = h.slack.posted("C1")
    assert "Hey &lt;!channel&gt; and &lt;@U999&gt; &amp; friends" in message.text
    assert "<!channel>" not in message.text


async def test_thread_reply_continues_with_history(h: SlackHarness) -> None:
    await h.command("/chat", "--model openai/gpt-4o-mini my name is Ada")
    [root] = h.slack.posted("C1")
    await h.event(reply_in_thread(root.ts, "what is my name?"), event_id="Ev100")

    first, second = h.openrouter.chat_requests
    assert first.json["model"] == second.json["model"] == "openai/gpt-4o-mini"
    assert second.json["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    [answer] = h.slack.thread("C1", root.ts)
    assert answer.text.startswith("echo: what is my name?")
    assert "openai/gpt-4o-mini · " in answer.text
    assert h.slack.calls_to("conversations.replies") == []  # history comes from our database
    rows = await h.usage_rows()
    assert [r.channel_id for r in rows] == ["C1", "C1"]
    assert rows[0].conversation_id == rows[1].conversation_id


async def test_long_answer_is_split_without_breaking_code_fences(h: SlackHarness) -> None:
    prose = " ".join(f"word{i}" for i in range(700))
    code = "\n".join(f"    line_{i} = {i} * 2" for i in range(150))
    answer = f"{prose}\n\n```python\n{code}\n```\n\n{prose}"
    h.openrouter.script(answer=answer)
    await h.command("/chat", "write a lot")
    [root] = h.slack.posted("C1", top_level=True)
    parts = [root, *h.slack.thread("C1", root.ts)]
    assert len(parts) >= 3
    for part in parts:
        assert len(part.text) <= 3500
        fences = [line for line in part.text.splitlines() if line.startswith("```")]
        assert len(fences) % 2 == 0, part.text
    assert all(not FOOTER.search(p.text) for p in parts[:-1])
    assert FOOTER.search(parts[-1].text)
    body = "".join(p.text for p in parts)
    assert body.count("line_149 = 149 * 2") == 1


async def test_long_answer_streams_into_thread_parts(h: SlackHarness) -> None:
    words = [f"w{i:04d}" for i in range(1300)]
    answer = "\n\n".join(" ".join(words[i : i + 100]) for i in range(0, len(words), 100))
    h.openrouter.script(answer=answer)
    h.openrouter.words_delay = 0.001  # about 1.5 s: parts are posted while it streams
    await h.command("/chat", "stream a lot")
    [root] = h.slack.posted("C1", top_level=True)
    parts = [root, *h.slack.thread("C1", root.ts)]
    assert len(parts) >= 2
    assert all(len(p.text) <= 3500 for p in parts)
    streamed = [m for m in parts if len(m.history) > 1]
    assert streamed, "parts were edited while streaming"
    text = "\n".join(p.text for p in parts)
    assert all(text.count(w) == 1 for w in ("w0000", "w0650", "w1299"))
    assert FOOTER.search(parts[-1].text)
    assert h.slack.update_violations() == 0


async def test_insufficient_credits_is_one_sentence_and_free(h: SlackHarness) -> None:
    h.openrouter.script(Fault.http(402, message="Insufficient credits"))
    await h.command("/chat", "hello")
    [message] = h.slack.posted("C1")
    answer = message.text.split("\n\n", 1)[1]
    assert answer.startswith("⚠ ")
    assert "credit" in answer.lower()
    assert "Nothing was charged." in answer
    assert "Traceback" not in answer
    [row] = await h.usage_rows()
    assert (row.outcome, row.cost_nano) == ("error", 0)


async def test_mid_stream_cut_off_keeps_the_partial_answer(h: SlackHarness) -> None:
    h.openrouter.script(
        Fault.error_chunk(after=3, code=502, message="upstream died"),
        answer="one two three four five six",
    )
    await h.command("/chat", "count")
    [message] = h.slack.posted("C1")
    assert "one two three" in message.text
    assert "four" not in message.text
    assert "cut off" in message.text
    assert ANY_FOOTER.search(message.text)
    [row] = await h.usage_rows()
    assert row.outcome == "cut_off"


async def test_no_key_is_told_privately_and_nothing_is_posted(tmp_path: Path) -> None:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}") as h:
        sent = await h.command("/chat", "hello")
        [reply] = h.replies(sent)
        assert reply["response_type"] == "ephemeral"
        assert "No OpenRouter API key is set" in reply["text"]
        assert h.slack.posted() == []
        assert h.openrouter.chat_requests == []


async def test_model_not_allowed(h: SlackHarness) -> None:
    sent = await h.command("/chat", "--model acme/unknown-model hello")
    assert "`acme/unknown-model` is not allowed in this workspace" in h.reply_text(sent)
    assert h.slack.posted() == []


async def test_channel_without_the_bot_costs_nothing(h: SlackHarness) -> None:
    h.slack.not_in_channel.add("C9")
    sent = await h.command("/chat", "hello", channel="C9")
    assert "invite me with `/invite @routerbot`" in h.reply_text(sent)
    assert "Nothing was charged." in h.reply_text(sent)
    assert h.openrouter.chat_requests == []
    assert await h.usage_rows() == []


async def test_slack_rate_limit_is_honoured(h: SlackHarness) -> None:
    h.slack.fail("chat.update", status=429, retry_after=1)
    await h.command("/chat", "hello")
    limited, retried = h.slack.calls_to("chat.update")
    assert limited.status == 429
    assert retried.status == 200
    assert retried.at - limited.at >= 1.0
    [message] = h.slack.posted("C1")
    assert FOOTER.search(message.text)


async def test_slack_server_error_is_retried(h: SlackHarness) -> None:
    h.slack.fail("chat.postMessage", status=503)
    await h.command("/chat", "hello")
    assert [c.status for c in h.slack.calls_to("chat.postMessage")] == [503, 200]
    [message] = h.slack.posted("C1")
    assert FOOTER.search(message.text)
    assert len(await h.usage_rows()) == 1
