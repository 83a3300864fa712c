"""The native Slack stream against an in-memory client: parts within the limit, fences closed
and reopened, no text lost or repeated (property-tested), failures, and the fall-back."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError

from bot.core.format import close_open_fence, reopen_fence
from bot.slack_app.native_stream import NativeAnswerStream
from bot.slack_app.native_support import NativeSupport
from bot.slack_app.streaming import EMPTY_ANSWER
from bot.slack_app.text import escape, unescape

FOOTER = "acme/model · 12 in · 34 out · $0.0012 · 1.0 s"


def api_error(error: str) -> SlackApiError:
    return SlackApiError(error, SimpleNamespace(data={"ok": False, "error": error}))


@dataclass
class Message:
    ts: str
    text: str
    thread_ts: str | None
    streaming: bool


@dataclass
class MemoryClient:
    """Just enough of ``AsyncWebClient``: messages, streams and their rules, in memory."""

    limit: int = 3500
    messages: dict[str, Message] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: method -> exceptions to raise on its next calls.
    faults: dict[str, list[BaseException]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _call(self, method: str, args: dict[str, Any]) -> None:
        self.calls.append((method, args))
        pending = self.faults.get(method)
        if pending:
            raise pending.pop(0)

    def _new(self, text: str, thread_ts: str | None, *, streaming: bool) -> dict[str, str]:
        assert len(text) <= self.limit, text
        ts = f"{next(self.ids)}.000"
        self.messages[ts] = Message(ts, text, thread_ts, streaming)
        return {"ts": ts}

    async def chat_postMessage(self, **args: Any) -> dict[str, str]:
        self._call("chat.postMessage", args)
        text = args.get("markdown_text") or args.get("text") or ""
        assert text.strip(), "no_text"
        return self._new(text, args.get("thread_ts"), streaming=False)

    async def chat_startStream(self, **args: Any) -> dict[str, str]:
        self._call("chat.startStream", args)
        assert args["markdown_text"].strip(), "a stream starts with visible text"
        assert args["recipient_user_id"] and args["recipient_team_id"]
        return self._new(args["markdown_text"], args["thread_ts"], streaming=True)

    async def chat_appendStream(self, **args: Any) -> dict[str, str]:
        self._call("chat.appendStream", args)
        message = self.messages[args["ts"]]
        if not message.streaming:
            raise api_error("message_not_in_streaming_state")
        assert args["markdown_text"]
        message.text += args["markdown_text"]
        assert len(message.text) <= self.limit
        return {"ts": message.ts}

    async def chat_stopStream(self, **args: Any) -> dict[str, str]:
        self._call("chat.stopStream", args)
        message = self.messages[args["ts"]]
        if not message.streaming:
            raise api_error("message_not_in_streaming_state")
        message.text += args.get("markdown_text") or ""
        message.streaming = False
        assert len(message.text) <= self.limit
        return {"ts": message.ts}

    async def chat_update(self, **args: Any) -> dict[str, str]:
        self._call("chat.update", args)
        message = self.messages[args["ts"]]
        assert not message.streaming, "a live stream is never edited"
        message.text = args.get("markdown_text") or args.get("text") or ""
        assert len(message.text) <= self.limit + 20  # AnswerStream's interim cursor
        return {"ts": message.ts}

    async def chat_delete(self, **args: Any) -> dict[str, str]:
        self._call("chat.delete", args)
        del self.messages[args["ts"]]
        return {"ts": args["ts"]}

    def thread(self, ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.thread_ts == ts]


def native(client: MemoryClient, **kwargs: Any) -> NativeAnswerStream:
    options: dict[str, Any] = {
        "channel": "C1",
        "team_id": "T1",
        "user_id": "U1",
        "thread_ts": "100.000",
        "interval": 0.0,
        "limit": client.limit,
    }
    options.update(kwargs)
    return NativeAnswerStream(client, **options)  # type: ignore[arg-type]


async def feed(stream: NativeAnswerStream, chunks: list[str], pauses: list[int]) -> None:
    for chunk, pause in zip(chunks, itertools.cycle(pauses or [0]), strict=False):
        stream.append(chunk)
        for _ in range(pause):
            await asyncio.sleep(0)


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


token = st.sampled_from(
    [
        "word",
        "more words",
        " ",
        "\n",
        "\n\n",
        "```python\n",
        "```\n",
        "~~~\n",
        "````js title\n",
        "& <b> <!channel>",
        "x" * 150,
        "a line of prose, fairly ordinary.\n",
        "    indented = code * 2\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(token, max_size=120),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
    st.lists(st.integers(min_value=0, max_value=4), max_size=8),
    st.sampled_from([120, 300, 700, 3500]),
)
def test_parts_hold_the_whole_answer_within_the_limit(
    tokens: list[str], cuts: list[int], pauses: list[int], limit: int
) -> None:
    answer = "".join(tokens)
    client = MemoryClient(limit=limit)

    async def run() -> NativeAnswerStream:
        stream = native(client)
        await stream.open()
        await feed(stream, chunked(answer, cuts), pauses)
        await stream.finish(answer, FOOTER)
        return stream

    stream = asyncio.run(run())
    parts = stream.parts
    assert [client.messages[p.ts].text for p in parts] == [p.text for p in parts]
    assert [m.ts for m in client.thread("100.000")] == [p.ts for p in parts]
    assert not any(m.streaming for m in client.messages.values())
    expected = escape(answer) if answer.strip() else EMPTY_ANSWER
    assert "".join(p.body for p in parts) == expected
    tail = f"\n\n{FOOTER}"
    footer_alone = parts[-1].reopen == parts[-1].body == "" and parts[-1].end == FOOTER
    answer_parts = parts[:-1] if footer_alone else parts
    for index, part in enumerate(answer_parts):
        assert len(part.text) <= limit
        shown = part.reopen + part.body
        closing = close_open_fence(shown)[len(shown) :]
        assert escape(unescape(part.body)) == part.body, "no cut splits &amp; &lt; &gt;"
        # Every part renders on its own: a block it opens (or continues) is closed in it.
        assert reopen_fence(shown + closing) == ""
        last = index == len(answer_parts) - 1
        assert part.end == (closing + tail if last and not footer_alone else closing)
        if index > 0:
            before = parts[index - 1]
            continued = reopen_fence(before.reopen + before.body)
            assert part.reopen == continued or (part.reopen == "" and not part.body.strip())
    assert parts[-1].text.endswith(FOOTER)


async def test_fail_keeps_the_partial_text_and_closes_the_fence() -> None:
    client = MemoryClient()
    stream = native(client)
    await stream.open()
    stream.append("Here:\n```python\nx = 1\n")
    await asyncio.sleep(0.05)
    assert client.calls[0][0] == "chat.startStream"
    await stream.fail("The provider failed.")
    [message] = client.thread("100.000")
    assert message.text == "Here:\n```python\nx = 1\n```\n\n⚠ The provider failed."
    assert [c[0] for c in client.calls] == ["chat.startStream", "chat.stopStream"]


async def test_failure_before_any_text_is_one_post() -> None:
    client = MemoryClient()
    stream = native(client)
    await stream.open()
    await stream.fail("No credits. Nothing was charged.")
    assert [c[0] for c in client.calls] == ["chat.postMessage"]
    [message] = client.thread("100.000")
    assert message.text == "⚠ No credits. Nothing was charged."


async def test_refused_native_streaming_hands_the_answer_to_chat_update() -> None:
    client = MemoryClient()
    client.faults["chat.startStream"] = [api_error("feature_not_enabled")]
    support = NativeSupport()
    stream = native(client, header="<@U1> asked:\n&gt; q", thread_ts=None, support=support)
    root = await stream.open()
    stream.append("Hello ")
    await asyncio.sleep(0.05)
    assert stream.fell_back
    stream.append("world")
    await stream.finish("Hello world", FOOTER)
    assert stream.root_ts == root
    [question] = client.messages.values()
    assert question.text == f"<@U1> asked:\n&gt; q\n\nHello world\n\n{FOOTER}"
    assert not support.available("T1", "C2"), "a feature refusal covers the whole team"


async def test_conversation_refusal_is_remembered_for_that_channel_only() -> None:
    now = [0.0]
    support = NativeSupport(ttl=3600, clock=lambda: now[0])
    support.refuse("T1", "C1", "method_not_supported_for_channel_type")
    assert not support.available("T1", "C1")
    assert support.available("T1", "C2")
    now[0] = 3601
    assert support.available("T1", "C1")


async def test_append_with_unknown_outcome_rewrites_the_message_whole() -> None:
    client = MemoryClient()
    client.faults["chat.appendStream"] = [aiohttp.ClientConnectionError("reset")]
    stream = native(client)
    await stream.open()
    stream.append("one ")
    await asyncio.sleep(0.02)
    stream.append("two ")
    await asyncio.sleep(0.02)
    stream.append("three")
    await stream.finish("one two three", FOOTER)
    [message] = client.thread("100.000")
    assert message.text == f"one two three\n\n{FOOTER}"
    methods = [c[0] for c in client.calls]
    assert methods[:3] == ["chat.startStream", "chat.appendStream", "chat.stopStream"]
    assert "chat.update" in methods


async def test_stream_ended_on_slacks_side_is_finished_with_chat_update() -> None:
    client = MemoryClient()
    stream = native(client)
    await stream.open()
    stream.append("alpha ")
    await asyncio.sleep(0.02)
    [message] = client.thread("100.000")
    message.streaming = False  # Slack ended it
    stream.append("beta")
    await stream.finish("alpha beta", FOOTER)
    assert message.text == f"alpha beta\n\n{FOOTER}"


@pytest.mark.parametrize("error", ["not_in_channel", "is_archived"])
async def test_other_errors_reach_the_caller(error: str) -> None:
    client = MemoryClient()
    client.faults["chat.postMessage"] = [api_error(error)]
    client.faults["chat.startStream"] = [api_error(error)]
    stream = native(client)
    await stream.open()
    stream.append("text")
    await asyncio.sleep(0.02)
    assert not stream.fell_back
    with pytest.raises(SlackApiError):
        await stream.finish("text", FOOTER)


async def test_stop_with_unknown_outcome_is_sent_again() -> None:
    client = MemoryClient()
    stream = native(client)
    await stream.open()
    stream.append("alpha")
    await asyncio.sleep(0.02)

    lost_answer = aiohttp.ClientConnectionError("reset after the stop landed")
    stop = client.chat_stopStream

    async def stop_then_lose_the_answer(**args: Any) -> dict[str, str]:
        await stop(**args)
        raise lost_answer

    client.chat_stopStream = stop_then_lose_the_answer  # type: ignore[method-assign]
    await stream.finish("alpha", FOOTER)
    [message] = client.thread("100.000")
    assert message.text == f"alpha\n\n{FOOTER}"
    methods = [c[0] for c in client.calls]
    assert methods[-3:] == ["chat.stopStream", "chat.stopStream", "chat.update"]


def test_reopen_fence_keeps_the_info_string() -> None:
    assert reopen_fence("text\n```python\nx = 1\n") == "```python\n"
    assert reopen_fence("````js title\ncode") == "````js title\n"
    assert reopen_fence("```python\nx = 1\n```\n") == ""
    assert reopen_fence("plain") == ""
