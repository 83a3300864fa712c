"""``StreamAccepted``: the adapter names the accepted generation before any text, when asked.

The ledger puts a chat on record from this moment (``bot.core.chat.flights``), so it must come
as early as the id is known (the response headers), once per attempt, and never without the
request asking for it (other callers see the stream exactly as before).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import respx

from adapters.base import StreamAccepted, StreamEvent, StreamFinished, TextDelta
from adapters.openai_compat import OpenAICompatibleAdapter
from tests.unit.test_adapter_stream import (
    CHAT,
    DONE,
    GEN,
    MODEL,
    RECORDED,
    RECORDED_TEXT,
    SSE_HEADERS,
    Body,
    adapter,
    chunk,
    collect,
    error_chunk,
    error_response,
    failed,
    final,
    make_request,
    router,
    sse,
    stream_response,
    text_of,
)

__all__ = ["adapter", "router"]  # the fixtures, imported for pytest


def accepted(events: list[StreamEvent]) -> list[StreamAccepted]:
    return [e for e in events if isinstance(e, StreamAccepted)]


async def test_announced_first_with_the_header_id(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(return_value=stream_response(RECORDED))
    events = await collect(adapter, announce_acceptance=True)
    assert events[0] == StreamAccepted(GEN, MODEL)
    assert accepted(events) == [events[0]]
    assert text_of(events) == RECORDED_TEXT
    assert isinstance(final(events), StreamFinished)


async def test_not_announced_unless_asked(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(return_value=stream_response(RECORDED))
    assert accepted(await collect(adapter)) == []


async def test_announced_before_the_first_text_arrives(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    """The id is in the headers: the announcement does not wait for the model's first token
    (a reasoning model may think for minutes, billed)."""
    first_token = asyncio.Event()

    class Thinking(Body):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b": OPENROUTER PROCESSING\n\n"
            await first_token.wait()
            yield sse(chunk("Hi"), chunk("", finish="stop"), DONE)

    router.post(CHAT).mock(return_value=httpx.Response(200, headers=SSE_HEADERS, stream=Thinking()))
    stream = adapter.stream_chat(make_request(announce_acceptance=True))
    assert await anext(stream) == StreamAccepted(GEN, MODEL)
    first_token.set()
    assert await anext(stream) == TextDelta("Hi")
    await stream.aclose()


async def test_without_a_header_the_first_chunk_names_the_generation(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Body(RECORDED)
        )
    )
    events = await collect(adapter, announce_acceptance=True)
    assert events[0] == StreamAccepted(GEN, MODEL)  # the chunks' ``id``
    assert isinstance(events[1], TextDelta)


async def test_a_retry_before_text_announces_its_own_generation(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    retried = "gen-retried-2"
    router.post(CHAT).mock(
        side_effect=[
            stream_response(sse(error_chunk(502), DONE)),
            httpx.Response(200, headers={**SSE_HEADERS, "x-generation-id": retried},
                           stream=Body(RECORDED)),
        ]
    )  # fmt: skip
    events = await collect(adapter, announce_acceptance=True)
    assert accepted(events) == [StreamAccepted(GEN, MODEL), StreamAccepted(retried, MODEL)]
    assert text_of(events) == RECORDED_TEXT


async def test_refused_before_the_stream_announces_nothing(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    router.post(CHAT).mock(return_value=error_response(402))
    events = await collect(adapter, announce_acceptance=True)
    assert accepted(events) == []
    assert failed(events).partial is False


async def test_closing_at_the_announcement_closes_the_response(
    router: respx.MockRouter, adapter: OpenAICompatibleAdapter
) -> None:
    body = Body(RECORDED)
    router.post(CHAT).mock(return_value=httpx.Response(200, headers=SSE_HEADERS, stream=body))
    stream = adapter.stream_chat(make_request(announce_acceptance=True))
    assert isinstance(await anext(stream), StreamAccepted)
    await stream.aclose()
    assert body.closed
    assert len(router.calls) == 1  # going away is not a failed attempt: nothing retried
