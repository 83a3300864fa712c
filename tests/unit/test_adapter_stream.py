"""OpenAICompatibleAdapter.stream_chat against recorded-shape SSE bodies (respx-mocked).

Covers the happy path (comment lines, the usage chunk after ``finish_reason``, exact Decimal
cost), every error class and where in a stream it can happen, retries only before the first
token, ``Retry-After`` handling, and that the API key never leaks into errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx
import stamina
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from adapters.base import (
    ChatMessage,
    ChatRequest,
    StreamEvent,
    StreamFailed,
    StreamFinished,
    TextDelta,
    Usage,
)
from adapters.errors import (
    AuthenticationError,
    BadRequestError,
    CutOffError,
    InsufficientCreditsError,
    MalformedResponseError,
    ModelNotFoundError,
    ModerationError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    RequestTimeoutError,
)
from adapters.fireworks import FireworksAdapter
from adapters.openai_compat import (
    RETRY_AFTER_CAP,
    OpenAICompatibleAdapter,
    parse_retry_after,
    retry_backoff,
)
from bot.core.messages import provider_sentence

BASE = "https://llm.test/api/v1"
CHAT = f"{BASE}/chat/completions"
KEY = "sk-or-v1-unit-secret-0123456789abcdef0123456789abcdef"
MODEL = "anthropic/claude-3.5-sonnet"
SERVED = "anthropic/claude-3.5-sonnet-20241022"
GEN = "gen-1732550000-AbCdEfGhIjKlMnOp"
SSE_HEADERS = {"content-type": "text/event-stream", "x-generation-id": GEN}


@pytest.fixture(autouse=True)
def _no_backoff_sleeps() -> Iterator[None]:
    # Zero waits, but each adapter's own attempt count still applies.
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def adapter() -> AsyncIterator[OpenAICompatibleAdapter]:
    async with OpenAICompatibleAdapter("test", BASE, max_retries=2) as a:
        yield a


def make_request(**overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Say hello"),
        ],
        "api_key": SecretStr(KEY),
    }
    fields.update(overrides)
    return ChatRequest(**fields)


# ---- recorded-shape bodies ----------------------------------------------------------------


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    role: bool = True,
    extra_delta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    delta.update(extra_delta or {})
    return {
        "id": GEN,
        "provider": "Anthropic",
        "model": SERVED,
        "object": "chat.completion.chunk",
        "created": 1732550000,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "finish_reason": finish,
                "native_finish_reason": finish,
                "logprobs": None,
            }
        ],
    }


def error_chunk(code: int | str = 502, message: str = "Provider returned error") -> dict[str, Any]:
    payload = chunk("", finish="error")
    payload["error"] = {"code": code, "message": message}
    return payload


# Written by hand, not json.dumps'd: the exact digits of ``cost`` are what is under test.
USAGE_LINE = (
    'data: {"id":"' + GEN + '","provider":"Anthropic","model":"' + SERVED + '",'
    '"object":"chat.completion.chunk","created":1732550000,"choices":[],'
    '"usage":{"prompt_tokens":1234,"completion_tokens":567,"total_tokens":1801,'
    '"cost":0.0123456789012345678,"is_byok":false,'
    '"prompt_tokens_details":{"cached_tokens":1000,"audio_tokens":0},'
    '"cost_details":{"upstream_inference_cost":null},'
    '"completion_tokens_details":{"reasoning_tokens":120,"image_tokens":0}}}\n\n'
)
EXPECTED_USAGE = Usage(
    prompt_tokens=1234,
    completion_tokens=567,
    cached_tokens=1000,
    reasoning_tokens=120,
    cost=Decimal("0.0123456789012345678"),
)
DONE = "data: [DONE]\n\n"
PROCESSING = ": OPENROUTER PROCESSING\n\n"


def sse(*events: dict[str, Any] | str) -> bytes:
    """Dicts become ``data:`` events; strings are written verbatim (comments, raw lines)."""
    out = []
    for event in events:
        out.append(event if isinstance(event, str) else f"data: {json.dumps(event)}\n\n")
    return "".join(out).encode()


RECORDED = sse(
    PROCESSING,
    PROCESSING,
    chunk(""),
    chunk("Hello"),
    chunk(", wörld"),
    chunk(extra_delta={"reasoning": "thinking..."}),  # reasoning is not answer text
    chunk("! ✓"),
    chunk("", finish="stop"),
    USAGE_LINE,
    DONE,
)
RECORDED_TEXT = "Hello, wörld! ✓"


class Body(httpx.AsyncByteStream):
    """A response body delivered in pieces; optionally fails after them; records closing."""

    def __init__(self, *pieces: bytes, then: Exception | None = None) -> None:
        self.pieces = pieces
        self.then = then
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.then is not None:
            raise self.then

    async def aclose(self) -> None:
        self.closed = True


def stream_response(*pieces: bytes, then: Exception | None = None) -> httpx.Response:
    return httpx.Response(200, headers=SSE_HEADERS, stream=Body(*pieces, then=then))


def error_response(
    status: int,
    message: str = "upstream says no",
    *,
    code: int | str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = {"error": {"code": status if code is None else code, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


async def collect(adapter: OpenAICompatibleAdapter, **overrides: Any) -> list[StreamEvent]:
    return [event async for event in adapter.stream_chat(make_request(**overrides))]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def final(events: list[StreamEvent]) -> StreamFinished | StreamFailed:
    last = events[-1]
    assert isinstance(last, StreamFinished | StreamFailed)
    # exactly one terminal event, and it is last
    assert sum(isinstance(e, StreamFinished | StreamFailed) for e in events) == 1
    return last


def failed(events: list[StreamEvent]) -> StreamFailed:
    last = final(events)
    assert isinstance(last, StreamFailed), last
    return last


# ---- the happy path -----------------------------------------------------------------------


async def test_recorded_stream_gives_text_then_usage_from_the_chunk_after_finish_reason(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(return_value=stream_response(RECORDED))

    events = await collect(adapter)

    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Hello"),
        TextDelta(", wörld"),
        TextDelta("! ✓"),
    ]
    assert events[-1] == StreamFinished(
        usage=EXPECTED_USAGE, model_served=SERVED, generation_id=GEN, finish_reason="stop"
    )


async def test_cost_is_the_exact_decimal_sent(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(return_value=stream_response(RECORDED))

    end = final(await collect(adapter))

    assert isinstance(end, StreamFinished) and end.usage is not None
    assert isinstance(end.usage.cost, Decimal)
    assert str(end.usage.cost) == "0.0123456789012345678"  # a float would have lost digits


async def test_request_body_and_headers(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(return_value=stream_response(RECORDED))

    await collect(
        adapter,
        temperature=0.3,
        max_completion_tokens=256,
        user="u-hash-1",
        extra_body={"provider": {"sort": "price"}, "stream": False, "model": "evil/override"},
    )

    sent = route.calls.last.request
    body = json.loads(sent.content)
    assert body["model"] == MODEL
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body
    assert body["temperature"] == 0.3
    assert body["user"] == "u-hash-1"
    assert body["provider"] == {"sort": "price"}
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "text/event-stream"
    # The key is per request, never a default of the pooled client.
    assert "authorization" not in {k.lower() for k in adapter._client.headers}


async def test_optional_fields_are_left_out(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(return_value=stream_response(RECORDED))
    await collect(adapter)
    body = json.loads(route.calls.last.request.content)
    assert not {"temperature", "user", "max_completion_tokens", "max_tokens"} & body.keys()


async def test_fireworks_sends_max_tokens_and_reports_no_cost(router: respx.MockRouter) -> None:
    fw_model = "accounts/fireworks/models/llama-v3p1-8b-instruct"
    last = chunk("", finish="stop")
    last["usage"] = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    route = router.post("https://fw.test/inference/v1/chat/completions").mock(
        return_value=httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=sse(chunk("Hi"), chunk(" there"), last, DONE),
        )
    )
    async with FireworksAdapter("https://fw.test/inference/v1") as fw:
        events = await collect(fw, model=fw_model, max_completion_tokens=99)

    assert fw.name == "fireworks"
    body = json.loads(route.calls.last.request.content)
    assert body["max_tokens"] == 99 and "max_completion_tokens" not in body
    end = final(events)
    assert text_of(events) == "Hi there"
    assert isinstance(end, StreamFinished)
    assert end.usage == Usage(prompt_tokens=12, completion_tokens=3, cost=None)
    assert end.generation_id == GEN  # from the chunk id when there is no header


async def test_fireworks_raises_its_short_default_completion_limit(
    router: respx.MockRouter,
) -> None:
    route = router.post("https://fw.test/inference/v1/chat/completions").mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse(chunk("Hi"), DONE)
        )
    )
    async with FireworksAdapter("https://fw.test/inference/v1") as fw:
        await collect(fw, model="accounts/fireworks/models/x")
    body = json.loads(route.calls.last.request.content)
    assert body["max_tokens"] == FireworksAdapter.default_max_tokens


async def test_stream_without_done_after_finish_reason_still_finishes(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        return_value=stream_response(sse(chunk("Hi"), chunk("", finish="length")))
    )
    events = await collect(adapter)
    end = final(events)
    assert isinstance(end, StreamFinished) and end.finish_reason == "length"
    assert end.usage is None
    assert text_of(events) == "Hi"


async def test_empty_answer_finishes_without_text(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        return_value=stream_response(sse(PROCESSING, chunk(""), chunk("", finish="stop"), DONE))
    )
    events = await collect(adapter)
    assert len(events) == 1 and isinstance(events[0], StreamFinished)


async def test_whole_json_completion_is_accepted(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    # A server that ignores ``stream: true`` and answers with one chat.completion.
    router.post(CHAT).mock(
        return_value=httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "model": SERVED,
                "object": "chat.completion",
                "created": 1,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Whole answer"},
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "cost": 0.5},
            },
        )
    )
    events = await collect(adapter)
    assert text_of(events) == "Whole answer"
    end = final(events)
    assert isinstance(end, StreamFinished)
    assert end.usage == Usage(prompt_tokens=5, completion_tokens=2, cost=Decimal("0.5"))


# ---- errors before the stream: HTTP status ------------------------------------------------

STATUS_CASES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (402, InsufficientCreditsError),
    (403, ModerationError),
    (404, ModelNotFoundError),
    (408, RequestTimeoutError),
    (413, BadRequestError),
    (422, BadRequestError),
    (429, RateLimitedError),
    (500, ProviderUnavailableError),
    (502, ProviderUnavailableError),
    (503, ProviderUnavailableError),
    (524, RequestTimeoutError),
    (529, ProviderUnavailableError),
]


@pytest.mark.parametrize(("status", "error_class"), STATUS_CASES)
async def test_http_status_before_stream_maps_to_the_taxonomy(
    router: respx.MockRouter,
    adapter: OpenAICompatibleAdapter,
    status: int,
    error_class: type[ProviderError],
) -> None:
    route = router.post(CHAT).mock(return_value=error_response(status, "provider words"))

    events = await collect(adapter)

    end = failed(events)
    assert type(end.error) is error_class
    assert end.partial is False
    assert end.error.status_code == status
    assert end.error.detail == "provider words"
    assert provider_sentence(end.error)  # a sentence for the user
    expected_calls = 1 + adapter.max_retries if error_class.retryable else 1
    assert route.call_count == expected_calls


async def test_404_names_the_model(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(return_value=error_response(404, "No endpoints found"))
    end = failed(await collect(adapter, model="nope/not-a-model"))
    assert isinstance(end.error, ModelNotFoundError)
    assert "nope/not-a-model" in provider_sentence(end.error)


async def test_502_and_503_say_what_is_wrong(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(side_effect=[error_response(502)] * 3 + [error_response(503)] * 3)
    down = failed(await collect(adapter)).error
    none = failed(await collect(adapter)).error
    assert "down" in provider_sentence(down)
    assert "no provider" in provider_sentence(none).lower()


async def test_string_error_code_and_non_json_error_body(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        side_effect=[
            error_response(400, "too long", code="context_length_exceeded"),
            httpx.Response(418, text="<html>teapot</html>"),
        ]
    )
    first = failed(await collect(adapter)).error
    assert isinstance(first, BadRequestError)
    assert first.provider_code == "context_length_exceeded"
    second = failed(await collect(adapter)).error
    assert isinstance(second, BadRequestError)
    assert second.detail == "<html>teapot</html>"


async def test_200_json_error_body_is_mapped(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        return_value=httpx.Response(
            200, json={"error": {"code": 402, "message": "Insufficient credits"}}
        )
    )
    end = failed(await collect(adapter))
    assert isinstance(end.error, InsufficientCreditsError)
    assert end.partial is False


async def test_unexpected_content_type_is_malformed(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        return_value=httpx.Response(200, text="<html>captive portal</html>")
    )
    end = failed(await collect(adapter))
    assert isinstance(end.error, MalformedResponseError)
    assert route.call_count == 3  # retryable: nothing was shown yet


# ---- errors before the stream: the connection ---------------------------------------------


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (httpx.ConnectError("refused"), ProviderUnavailableError),
        (httpx.ConnectTimeout("slow"), RequestTimeoutError),
        (httpx.ReadTimeout("no headers"), RequestTimeoutError),
        (httpx.RemoteProtocolError("closed"), ProviderUnavailableError),
        (httpx.ReadError("reset"), ProviderUnavailableError),
    ],
)
async def test_transport_failures_before_the_first_token(
    router: respx.MockRouter,
    adapter: OpenAICompatibleAdapter,
    exc: Exception,
    error_class: type[ProviderError],
) -> None:
    route = router.post(CHAT).mock(side_effect=exc)
    end = failed(await collect(adapter))
    assert type(end.error) is error_class
    assert end.partial is False
    assert route.call_count == 3


# ---- errors inside a 200 stream ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_class", "retried"),
    [
        (402, InsufficientCreditsError, False),
        ("403", ModerationError, False),
        ("rate_limit_exceeded", RateLimitedError, True),
        (502, ProviderUnavailableError, True),
        ("something_new", ProviderUnavailableError, True),
    ],
)
async def test_error_chunk_before_any_text_is_the_mapped_class(
    router: respx.MockRouter,
    adapter: OpenAICompatibleAdapter,
    code: int | str,
    error_class: type[ProviderError],
    retried: bool,
) -> None:
    route = router.post(CHAT).mock(
        side_effect=lambda request: stream_response(
            sse(PROCESSING, chunk(""), error_chunk(code, "boom"))
        )
    )
    end = failed(await collect(adapter))
    assert type(end.error) is error_class
    assert end.partial is False
    assert end.error.detail == "boom"
    assert route.call_count == (3 if retried else 1)


async def test_error_chunk_after_text_is_cut_off_and_never_retried(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    body = sse(PROCESSING, chunk("Half an"), chunk(" answer"), error_chunk(502))
    route = router.post(CHAT).mock(return_value=stream_response(body))
    events = await collect(adapter)
    end = failed(events)
    assert text_of(events) == "Half an answer"
    assert isinstance(end.error, CutOffError)
    assert end.partial is True
    assert end.error.provider_code == "502"
    assert end.error.detail is not None and "Provider returned error" in end.error.detail
    assert end.model_served == SERVED and end.generation_id == GEN
    assert route.call_count == 1


async def test_finish_reason_error_inside_choices_after_text(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    bad = chunk(" and then", finish="error")  # text and failure in one chunk
    bad["choices"][0]["error"] = {"code": 500, "message": "upstream crashed"}
    router.post(CHAT).mock(return_value=stream_response(sse(chunk("Some"), bad)))
    events = await collect(adapter)
    assert text_of(events) == "Some and then"  # the text in the failing chunk is kept
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial


async def test_finish_reason_error_without_details_before_text(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        side_effect=lambda request: stream_response(sse(chunk("", finish="error")))
    )
    end = failed(await collect(adapter))
    assert isinstance(end.error, ProviderUnavailableError) and not end.partial


async def test_usage_on_a_cut_off_stream_is_reported(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    err = error_chunk()
    err["usage"] = {"prompt_tokens": 10, "completion_tokens": 2, "cost": 0.0001}
    router.post(CHAT).mock(return_value=stream_response(sse(chunk("Hi"), err)))
    end = failed(await collect(adapter))
    assert end.usage == Usage(prompt_tokens=10, completion_tokens=2, cost=Decimal("0.0001"))


async def test_malformed_json_line_before_text(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        side_effect=lambda request: stream_response(sse(PROCESSING, 'data: {"id": "x", "cho\n\n'))
    )
    end = failed(await collect(adapter))
    assert isinstance(end.error, MalformedResponseError) and not end.partial
    assert route.call_count == 3


async def test_malformed_json_line_after_text(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        return_value=stream_response(sse(chunk("Hello"), "data: {not json}\n\n", DONE))
    )
    events = await collect(adapter)
    end = failed(events)
    assert text_of(events) == "Hello"
    assert isinstance(end.error, CutOffError) and end.partial
    assert "unreadable" in provider_sentence(end.error)
    assert route.call_count == 1


async def test_premature_end_after_text_is_cut_off(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(return_value=stream_response(sse(chunk("Hel"), chunk("lo"))))
    events = await collect(adapter)
    assert text_of(events) == "Hello"
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial


async def test_premature_end_before_text_is_malformed(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(side_effect=lambda request: stream_response(sse(PROCESSING)))
    end = failed(await collect(adapter))
    assert isinstance(end.error, MalformedResponseError) and not end.partial


async def test_dropped_connection_after_text(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        return_value=stream_response(
            sse(chunk("Part")),
            then=httpx.RemoteProtocolError("peer closed connection (incomplete chunked read)"),
        )
    )
    events = await collect(adapter)
    end = failed(events)
    assert text_of(events) == "Part"
    assert isinstance(end.error, CutOffError) and end.partial
    assert "dropped" in provider_sentence(end.error)
    assert route.call_count == 1


async def test_dropped_connection_before_text_is_retried(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        side_effect=[
            stream_response(sse(PROCESSING), then=httpx.ReadError("connection reset")),
            stream_response(RECORDED),
        ]
    )
    events = await collect(adapter)
    assert text_of(events) == RECORDED_TEXT
    assert isinstance(final(events), StreamFinished)
    assert route.call_count == 2


async def test_dropped_after_finish_reason_keeps_the_whole_answer(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        return_value=stream_response(
            sse(chunk("All"), chunk(" done"), chunk("", finish="stop")),
            then=httpx.RemoteProtocolError("closed"),
        )
    )
    events = await collect(adapter)
    end = final(events)
    assert isinstance(end, StreamFinished) and end.usage is None
    assert text_of(events) == "All done"


async def test_read_timeout_mid_stream_is_cut_off(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        return_value=stream_response(sse(chunk("Thinking")), then=httpx.ReadTimeout("idle"))
    )
    events = await collect(adapter)
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial
    assert "stopped responding" in provider_sentence(end.error)


async def test_read_timeout_before_text_is_a_timeout(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        side_effect=lambda request: stream_response(sse(PROCESSING), then=httpx.ReadTimeout("idle"))
    )
    end = failed(await collect(adapter))
    assert isinstance(end.error, RequestTimeoutError) and not end.partial
    assert route.call_count == 3


@pytest.mark.parametrize("fail_on_call", [1, 3])
async def test_a_bug_in_parsing_still_ends_in_an_event(
    router: respx.MockRouter,
    adapter: OpenAICompatibleAdapter,
    monkeypatch: pytest.MonkeyPatch,
    fail_on_call: int,
) -> None:
    from adapters import openai_compat

    real_feed = openai_compat._ChunkParser.feed
    calls = 0

    def feed(self: openai_compat._ChunkParser, data: str) -> tuple[str, ProviderError | None]:
        nonlocal calls
        calls += 1
        if calls == fail_on_call:
            raise RuntimeError("bug")
        return real_feed(self, data)

    monkeypatch.setattr(openai_compat._ChunkParser, "feed", feed)
    router.post(CHAT).mock(return_value=stream_response(RECORDED))
    end = failed(await collect(adapter))
    if fail_on_call == 1:  # before any text
        assert isinstance(end.error, MalformedResponseError) and not end.partial
    else:
        assert isinstance(end.error, CutOffError) and end.partial


# ---- retries ------------------------------------------------------------------------------


async def test_retry_before_first_token_then_success(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        side_effect=[
            error_response(503),
            httpx.ConnectError("refused"),
            stream_response(RECORDED),
        ]
    )
    events = await collect(adapter)
    assert text_of(events) == RECORDED_TEXT
    assert isinstance(final(events), StreamFinished)
    assert route.call_count == 3


async def test_max_retries_zero_means_one_attempt(router: respx.MockRouter) -> None:
    route = router.post(CHAT).mock(return_value=error_response(503))
    async with OpenAICompatibleAdapter("t", BASE, max_retries=0) as once:
        end = failed(await collect(once))
    assert isinstance(end.error, ProviderUnavailableError)
    assert route.call_count == 1


async def test_failed_attempts_close_their_responses(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    bodies = [Body(sse(PROCESSING, error_chunk(503))) for _ in range(3)]
    router.post(CHAT).mock(
        side_effect=[httpx.Response(200, headers=SSE_HEADERS, stream=b) for b in bodies]
    )
    failed(await collect(adapter))
    assert all(b.closed for b in bodies)


async def test_retry_after_within_cap_is_waited_out(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        side_effect=[
            error_response(429, headers={"Retry-After": "2"}),
            stream_response(RECORDED),
        ]
    )
    events = await collect(adapter)
    assert isinstance(final(events), StreamFinished)
    assert route.call_count == 2


async def test_retry_after_beyond_cap_gives_up_at_once(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    route = router.post(CHAT).mock(
        return_value=error_response(429, "slow down", headers={"Retry-After": "120"})
    )
    end = failed(await collect(adapter))
    assert isinstance(end.error, RateLimitedError)
    assert end.error.retry_after == 120.0
    assert "120 s" in provider_sentence(end.error)
    assert route.call_count == 1


async def test_retry_after_as_http_date(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=5), usegmt=True)
    router.post(CHAT).mock(return_value=error_response(429, headers={"Retry-After": later}))
    end = failed(await collect(adapter))
    assert isinstance(end.error, RateLimitedError)
    assert end.error.retry_after is not None and 290 < end.error.retry_after <= 300


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None


def test_retry_backoff_hook() -> None:
    assert retry_backoff(ProviderUnavailableError()) is True
    assert retry_backoff(RequestTimeoutError()) is True
    assert retry_backoff(RateLimitedError()) is True
    assert retry_backoff(RateLimitedError(retry_after=3)) == 3
    assert retry_backoff(RateLimitedError(retry_after=RETRY_AFTER_CAP + 1)) is False
    assert retry_backoff(BadRequestError()) is False
    assert retry_backoff(AuthenticationError()) is False
    assert retry_backoff(CutOffError()) is False
    assert retry_backoff(ValueError()) is False


# ---- cancellation and closing -------------------------------------------------------------


async def test_closing_the_generator_early_closes_the_response(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    body = Body(RECORDED)
    router.post(CHAT).mock(return_value=httpx.Response(200, headers=SSE_HEADERS, stream=body))
    stream = adapter.stream_chat(make_request())
    first = await anext(stream)
    assert first == TextDelta("Hello")
    await stream.aclose()
    assert body.closed


async def test_cancellation_propagates_and_closes_the_response(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    started = asyncio.Event()

    class Stalls(Body):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield sse(chunk("Hi"))
            started.set()
            await asyncio.Event().wait()  # never set: a stream that stalls
            yield b""  # pragma: no cover

    body = Stalls()
    router.post(CHAT).mock(return_value=httpx.Response(200, headers=SSE_HEADERS, stream=body))

    async def consume() -> list[StreamEvent]:
        return await collect(adapter)

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.closed


async def test_cancellation_during_retry_loop_propagates(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    entered = asyncio.Event()

    async def stall(request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover

    router.post(CHAT).mock(side_effect=stall)
    task = asyncio.create_task(collect(adapter))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ---- the key never leaks -------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 429, 500, 502, 503])
async def test_key_never_appears_in_errors(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter, status: int
) -> None:
    # A provider that echoes the key back in its message.
    router.post(CHAT).mock(return_value=error_response(status, f"Key {KEY} is not valid here"))
    end = failed(await collect(adapter))
    for text in (
        str(end.error),
        repr(end.error),
        provider_sentence(end.error),
        end.error.detail or "",
        repr(end),
        repr(adapter),
        repr(make_request()),
    ):
        assert KEY not in text
    assert "[redacted]" in (end.error.detail or "")


async def test_key_never_appears_in_a_mid_stream_cut_off(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        return_value=stream_response(sse(chunk("x"), error_chunk(500, f"bad key {KEY}")))
    )
    end = failed(await collect(adapter))
    assert KEY not in repr(end) and KEY not in (end.error.detail or "")


async def test_key_is_not_logged(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    router.post(CHAT).mock(
        side_effect=[error_response(503, f"echo {KEY}"), stream_response(RECORDED)]
    )
    await collect(adapter)
    assert KEY not in caplog.text


# ---- SSE framing is irrelevant: property test ----------------------------------------------

_EVENTS: list[str] = [
    f"data: {json.dumps(chunk(''))}",
    f"data: {json.dumps(chunk('Hello'))}",
    f"data: {json.dumps(chunk(', wörld'))}",
    f"data: {json.dumps(chunk('! ✓'))}",
    f"data: {json.dumps(chunk('', finish='stop'))}",
    USAGE_LINE.strip("\n"),
    "data: [DONE]",
]


@st.composite
def framed_bodies(draw: st.DrawFn) -> list[bytes]:
    """The recorded stream with random comment lines, line endings and byte splits."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    comment = st.sampled_from([": OPENROUTER PROCESSING", ":", ": keep-alive {not json"])
    lines: list[str] = []
    for event in _EVENTS:
        lines.extend(draw(st.lists(comment, max_size=2)))
        if draw(st.booleans()):
            lines.append("")  # a stray blank line dispatches nothing
        lines.append(event)
        lines.extend(draw(st.lists(comment, max_size=1)))  # comments inside the event block
        lines.append("")  # the blank line that ends the event
    raw = newline.join(lines).encode() + newline.encode()
    cuts = sorted(draw(st.sets(st.integers(1, len(raw) - 1), max_size=40)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=framed_bodies())
def test_any_framing_gives_the_same_text_and_usage(pieces: list[bytes]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, stream=Body(*pieces))

    async def run() -> list[StreamEvent]:
        async with OpenAICompatibleAdapter(
            "prop", BASE, transport=httpx.MockTransport(handler), max_retries=0
        ) as a:
            return [e async for e in a.stream_chat(make_request())]

    events = asyncio.run(run())
    assert text_of(events) == RECORDED_TEXT
    end = final(events)
    assert isinstance(end, StreamFinished), end
    assert end.usage == EXPECTED_USAGE
    assert end.finish_reason == "stop"


def test_package_exports_resolve_lazily() -> None:
    import subprocess
    import sys

    import adapters

    for name in adapters.__all__:
        assert getattr(adapters, name) is not None
    code = "import sys, adapters.base; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
