"""The adapters against FakeOpenRouter over real HTTP on loopback: streams, every fault kind,
retries, lookups, keys, generation stats, and the fake as a standalone process."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stamina
from pydantic import SecretStr

from adapters.base import (
    ChatMessage,
    ChatRequest,
    KeyInfo,
    ModelPricing,
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
    ProviderUnavailableError,
    RateLimitedError,
    RequestTimeoutError,
)
from adapters.openrouter import OpenRouterAdapter
from bot.core.messages import provider_sentence
from tests.fakes.openrouter import DEFAULT_KEY, FakeModel, FakeOpenRouter, Fault

MODEL = "anthropic/claude-3.5-sonnet"  # $3 in / $15 out / $0.30 cached, per 1M


@pytest.fixture(autouse=True)
def _no_backoff_sleeps() -> Iterator[None]:
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@pytest.fixture
async def adapter(fake: FakeOpenRouter) -> AsyncIterator[OpenRouterAdapter]:
    async with OpenRouterAdapter(
        fake.base_url, app_url="https://example.org/routerbot", app_title="routerbot"
    ) as a:
        yield a


def request(prompt: str = "hello brave new world", **overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {
        "model": MODEL,
        "messages": [ChatMessage("user", prompt)],
        "api_key": SecretStr(DEFAULT_KEY),
    }
    fields.update(overrides)
    return ChatRequest(**fields)


async def run(adapter: OpenRouterAdapter, req: ChatRequest | None = None) -> list[StreamEvent]:
    return [event async for event in adapter.stream_chat(req or request())]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finished(events: list[StreamEvent]) -> StreamFinished:
    assert isinstance(events[-1], StreamFinished), events[-1]
    return events[-1]


def failed(events: list[StreamEvent]) -> StreamFailed:
    assert isinstance(events[-1], StreamFailed), events[-1]
    return events[-1]


# ---- streams ------------------------------------------------------------------------------


async def test_stream_text_usage_and_exact_cost(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    events = await run(adapter)

    assert text_of(events) == "echo: hello brave new world"
    assert len([e for e in events if isinstance(e, TextDelta)]) == 5  # one chunk per word
    end = finished(events)
    # prompt: 4 words + 3 per message = 7 tokens; completion: 5 words.
    assert end.usage == Usage(
        prompt_tokens=7,
        completion_tokens=5,
        cost=7 * Decimal("0.000003") + 5 * Decimal("0.000015"),
    )
    assert end.finish_reason == "stop"
    assert end.model_served == MODEL
    assert end.generation_id is not None and end.generation_id in fake.generations


async def test_request_as_the_fake_saw_it(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    await run(adapter, request(max_completion_tokens=50, temperature=0.5, user="u1"))

    (sent,) = fake.chat_requests
    assert sent.method == "POST"
    assert sent.headers["Authorization"] == f"Bearer {DEFAULT_KEY}"
    assert sent.headers["HTTP-Referer"] == "https://example.org/routerbot"
    assert sent.headers["X-OpenRouter-Title"] == "routerbot"
    assert sent.headers["X-Title"] == "routerbot"
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["max_completion_tokens"] == 50
    assert sent.json["temperature"] == 0.5
    assert sent.json["user"] == "u1"


async def test_scripted_answer_served_model_cached_and_reasoning_tokens(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(
        answer="Paris is\nthe capital.",
        served_model="anthropic/claude-3.5-sonnet-20241022",
        cached_tokens=5,
        reasoning_tokens=10,
    )
    events = await run(adapter)

    assert text_of(events) == "Paris is\nthe capital."
    end = finished(events)
    assert end.model_served == "anthropic/claude-3.5-sonnet-20241022"
    assert end.usage is not None
    assert (end.usage.prompt_tokens, end.usage.cached_tokens) == (7, 5)
    assert (end.usage.completion_tokens, end.usage.reasoning_tokens) == (4 + 10, 10)
    assert end.usage.cost == (
        2 * Decimal("0.000003") + 5 * Decimal("0.0000003") + 14 * Decimal("0.000015")
    )


async def test_script_for_one_model_leaves_others_alone(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.http(503), model="openai/gpt-4o-mini", times=None)
    ok = await run(adapter)
    bad = await run(adapter, request(model="openai/gpt-4o-mini"))
    assert isinstance(ok[-1], StreamFinished)
    assert isinstance(failed(bad).error, ProviderUnavailableError)


async def test_no_usage_chunk(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    fake.script(Fault.no_usage())
    end = finished(await run(adapter))
    assert end.usage is None


async def test_no_cost_in_usage(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    fake.script(Fault.no_cost())
    end = finished(await run(adapter))
    assert end.usage is not None and end.usage.cost is None
    assert end.usage.completion_tokens == 5


async def test_many_concurrent_streams_share_the_pool(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.words_delay = 0.001
    results = await asyncio.gather(*(run(adapter, request(f"question {i}")) for i in range(25)))
    assert [text_of(r) for r in results] == [f"echo: question {i}" for i in range(25)]
    assert all(isinstance(r[-1], StreamFinished) for r in results)


# ---- faults before the stream -------------------------------------------------------------


async def test_bad_key_is_401(adapter: OpenRouterAdapter) -> None:
    end = failed(await run(adapter, request(api_key=SecretStr("sk-or-v1-wrong"))))
    assert isinstance(end.error, AuthenticationError)
    assert end.error.detail == "No auth credentials found"


async def test_402_is_not_retried(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    fake.script(Fault.http(402, message="Insufficient credits"), times=None)
    end = failed(await run(adapter))
    assert isinstance(end.error, InsufficientCreditsError)
    assert len(fake.chat_requests) == 1


async def test_unknown_model_with_strict_catalogue(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.strict_models = True
    end = failed(await run(adapter, request(model="nobody/nothing")))
    assert isinstance(end.error, BadRequestError)
    assert end.error.detail == "nobody/nothing is not a valid model ID"


async def test_429_with_short_retry_after_is_retried(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.http(429, retry_after="1"))
    events = await run(adapter)
    assert text_of(events) == "echo: hello brave new world"
    assert len(fake.chat_requests) == 2


async def test_429_with_long_retry_after_fails_at_once(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.http(429, retry_after="60"), times=None)
    end = failed(await run(adapter))
    assert isinstance(end.error, RateLimitedError) and end.error.retry_after == 60
    assert len(fake.chat_requests) == 1


async def test_5xx_retried_until_it_works(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    fake.script(Fault.http(503), times=2)
    events = await run(adapter)
    assert isinstance(events[-1], StreamFinished)
    assert len(fake.chat_requests) == 3


async def test_5xx_retries_exhausted(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    fake.script(Fault.http(502), times=None)
    end = failed(await run(adapter))
    assert isinstance(end.error, ProviderUnavailableError) and not end.partial
    assert len(fake.chat_requests) == 1 + adapter.max_retries


async def test_connection_refused(adapter: OpenRouterAdapter, fake: FakeOpenRouter) -> None:
    await fake.stop()
    end = failed(await run(adapter))
    assert isinstance(end.error, ProviderUnavailableError) and not end.partial


# ---- faults inside the stream --------------------------------------------------------------


async def test_error_chunk_after_text_is_cut_off_not_retried(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.error_chunk(after=2, code=502), times=None)
    events = await run(adapter)
    assert text_of(events) == "echo: hello"
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial
    assert end.generation_id is not None
    assert len(fake.chat_requests) == 1


async def test_error_chunk_before_text_is_retried(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.error_chunk(after=0, code=502))
    events = await run(adapter)
    assert text_of(events) == "echo: hello brave new world"
    assert len(fake.chat_requests) == 2


async def test_error_chunk_with_string_code_before_text(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.error_chunk(after=0, code="payment_required", message="No credits"))
    end = failed(await run(adapter))
    assert isinstance(end.error, InsufficientCreditsError) and not end.partial


async def test_malformed_line_after_text(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    fake.script(Fault.malformed(after=1))
    events = await run(adapter)
    assert text_of(events) == "echo:"
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial


async def test_malformed_line_before_text(fake: FakeOpenRouter, adapter: OpenRouterAdapter) -> None:
    fake.script(Fault.malformed(after=0), times=None)
    end = failed(await run(adapter))
    assert isinstance(end.error, MalformedResponseError) and not end.partial


async def test_dropped_connection_after_text(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.drop(after=3))
    events = await run(adapter)
    assert text_of(events) == "echo: hello brave"
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial
    assert "dropped" in provider_sentence(end.error)


async def test_dropped_connection_before_text_is_retried(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.script(Fault.drop(after=0))
    events = await run(adapter)
    assert isinstance(events[-1], StreamFinished)
    assert len(fake.chat_requests) == 2


def quick_reads(read: float) -> httpx.Timeout:
    """The adapter's timeouts with a read timeout short enough for a test to trip."""
    return httpx.Timeout(connect=2.0, read=read, write=2.0, pool=2.0)


async def test_hang_after_text_trips_the_read_timeout(fake: FakeOpenRouter) -> None:
    fake.script(Fault.hang(after=2))
    timeout = quick_reads(0.2)
    async with OpenRouterAdapter(fake.base_url, timeout=timeout) as quick:
        started = time.monotonic()
        events = await run(quick)
        elapsed = time.monotonic() - started
    assert text_of(events) == "echo: hello"
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial
    assert "stopped responding" in provider_sentence(end.error)
    assert elapsed < 3


async def test_hang_before_text_is_a_timeout(fake: FakeOpenRouter) -> None:
    fake.script(Fault.hang(after=0), times=None)
    timeout = quick_reads(0.1)
    async with OpenRouterAdapter(fake.base_url, timeout=timeout, max_retries=1) as quick:
        end = failed(await run(quick))
    assert isinstance(end.error, RequestTimeoutError) and not end.partial
    assert len(fake.chat_requests) == 2


async def test_keepalive_comments_cannot_hold_an_answer_open_forever(fake: FakeOpenRouter) -> None:
    """Comments reset the read timeout; the stream deadline still ends the answer."""
    fake.script(Fault.keepalive(after=2, every=0.05))
    timeout = quick_reads(0.2)
    async with OpenRouterAdapter(fake.base_url, timeout=timeout, stream_deadline=0.6) as quick:
        started = time.monotonic()
        events = await run(quick)
        elapsed = time.monotonic() - started
    assert text_of(events) == "echo: hello"
    end = failed(events)
    assert isinstance(end.error, CutOffError) and end.partial
    assert "stopped responding" in provider_sentence(end.error)
    assert 0.5 < elapsed < 3, "the comments kept the 0.2 s read timeout from firing"


async def test_keepalive_before_any_text_is_one_timeout_not_retried(fake: FakeOpenRouter) -> None:
    fake.script(Fault.keepalive(after=0, every=0.05), times=None)
    timeout = quick_reads(0.2)
    async with OpenRouterAdapter(
        fake.base_url, timeout=timeout, max_retries=2, stream_deadline=0.5
    ) as quick:
        end = failed(await run(quick))
    assert isinstance(end.error, RequestTimeoutError) and not end.partial
    assert len(fake.chat_requests) == 1, "a retry would start past the same deadline"


async def test_keepalive_comments_within_the_deadline_are_harmless(fake: FakeOpenRouter) -> None:
    fake.script(Fault.keepalive(after=1, seconds=0.4, every=0.05))
    timeout = quick_reads(0.2)
    async with OpenRouterAdapter(fake.base_url, timeout=timeout, stream_deadline=5) as quick:
        events = await run(quick)
    assert text_of(events) == "echo: hello brave new world"
    assert isinstance(events[-1], StreamFinished)


# ---- non-streaming shape of the fake -------------------------------------------------------


async def test_fake_answers_without_streaming(fake: FakeOpenRouter) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url + "/") as client:
        headers = {"Authorization": f"Bearer {DEFAULT_KEY}"}
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi there"}]}
        ok = (await client.post("chat/completions", json=body, headers=headers)).json()
        fake.script(Fault.error_chunk(after=2))
        cut = (await client.post("chat/completions", json=body, headers=headers)).json()
    assert ok["object"] == "chat.completion"
    assert ok["choices"][0]["message"]["content"] == "echo: hi there"
    assert ok["usage"]["cost"] > 0
    assert cut["choices"][0]["finish_reason"] == "error"
    assert cut["choices"][0]["message"]["content"] == "echo: hi"
    assert cut["choices"][0]["error"]["code"] == 502


# ---- models, keys, generations -------------------------------------------------------------


async def test_lookup_model_against_the_fake(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    info = await adapter.lookup_model(MODEL, None)
    assert info is not None
    assert info.pricing == ModelPricing(Decimal("3"), Decimal("15"), Decimal("0.3"))
    assert info.context_length == 200_000

    free = await adapter.lookup_model("meta-llama/llama-3.1-8b-instruct:free", None)
    assert free is not None and free.pricing.input_per_1m == 0

    assert await adapter.lookup_model("nobody/nothing", None) is None
    paths = [r.path for r in fake.requests]
    assert "/api/v1/models/nobody/nothing/endpoints" in paths
    assert "/api/v1/models" not in paths  # never the whole catalogue


async def test_lookup_model_through_the_endpoints_fallback(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.add_model(
        FakeModel(
            "newco/fresh-model",
            "NewCo: Fresh",
            "0.000001",
            "0.000002",
            on_model_route=False,
            endpoints=(("Pricey", "0.000004", "0.000008"), ("Cheap", "0.0000005", "0.000001")),
        )
    )
    info = await adapter.lookup_model("newco/fresh-model", None)
    assert info is not None
    assert info.pricing == ModelPricing(Decimal("0.5"), Decimal("1"), None)


async def test_check_key_and_usage_accumulate(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.key_info[DEFAULT_KEY] = {
        "label": "team key",
        "limit": 10,
        "limit_remaining": 10,
        "usage": Decimal(0),
    }
    before = await adapter.check_key(SecretStr(DEFAULT_KEY))
    assert before == KeyInfo(
        label="team key", limit=Decimal(10), limit_remaining=Decimal(10), usage=Decimal(0)
    )
    end = finished(await run(adapter))
    after = await adapter.check_key(SecretStr(DEFAULT_KEY))
    assert end.usage is not None and end.usage.cost is not None
    assert after.usage == end.usage.cost
    assert after.limit_remaining == Decimal(10) - end.usage.cost

    with pytest.raises(AuthenticationError):
        await adapter.check_key(SecretStr("sk-or-v1-not-valid"))


async def test_get_generation_after_a_chat(
    fake: FakeOpenRouter, adapter: OpenRouterAdapter
) -> None:
    fake.generation_delay_polls = 2  # not written yet for the first two polls
    end = finished(await run(adapter))
    assert end.generation_id is not None and end.usage is not None

    info = await adapter.get_generation(end.generation_id, SecretStr(DEFAULT_KEY))

    assert info is not None
    assert info.id == end.generation_id
    assert info.total_cost == end.usage.cost
    assert info.tokens_completion == end.usage.completion_tokens
    generation_calls = [r for r in fake.requests if r.path.endswith("/generation")]
    assert len(generation_calls) == 3
    assert await adapter.get_generation("gen-unknown", SecretStr(DEFAULT_KEY)) is None


# ---- standalone ---------------------------------------------------------------------------


async def test_fake_runs_as_a_standalone_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.openrouter",
        "--port",
        "0",
        "--words",
        "30",
        "--delay",
        "0",
        "--key",
        "sk-or-v1-bench",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        base_url = line.decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        async with OpenRouterAdapter(base_url) as remote:
            events = await run(remote, request(api_key=SecretStr("sk-or-v1-bench")))
        assert len(text_of(events).split()) == 30
        assert isinstance(events[-1], StreamFinished)
    finally:
        process.terminate()
        await process.wait()
