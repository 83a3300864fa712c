"""The aiohttp transport under the adapters: same answers, same httpx exceptions, same proxies.

Against a real aiohttp server on loopback (respx mocks httpx's own transport, not this one):
a streamed answer end to end through the adapter; each transport failure raised as the httpx
exception httpx's transport raises for it, so the adapters' error taxonomy is unchanged; the
request's timeouts; ``HTTP_PROXY``/``NO_PROXY`` from the environment; the SSE reader against
``httpx-sse`` over arbitrary chunkings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import httpx
import pytest
from aiohttp import web
from httpx_sse._decoders import SSEDecoder as ReferenceDecoder
from httpx_sse._decoders import SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from adapters.base import ChatMessage, ChatRequest, StreamFailed, StreamFinished, TextDelta
from adapters.errors import CutOffError, ProviderUnavailableError, RequestTimeoutError
from adapters.openai_compat import OpenAICompatibleAdapter
from adapters.openai_compat.sse import SSEDecoder
from adapters.openai_compat.transport import AiohttpTransport, provider_transport

KEY = "sk-or-v1-transport-test-0000000000000000"
CHUNK = (
    'data: {"id":"gen-1","model":"m/served","choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
)
USAGE = (
    'data: {"id":"gen-1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,'
    '"cost":0.000012345678901234567}}\n\n'
)
FINISH = 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def request() -> ChatRequest:
    return ChatRequest(
        model="m/requested", messages=[ChatMessage("user", "hi")], api_key=SecretStr(KEY)
    )


async def sse(
    request: web.Request, parts: list[str], *, drop_after: int | None = None
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b": OPENROUTER PROCESSING\n\n")
    for index, part in enumerate(parts):
        if drop_after is not None and index == drop_after:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(part.encode())
    return response


async def events(adapter: OpenAICompatibleAdapter) -> list[object]:
    return [event async for event in adapter.stream_chat(request())]


async def test_a_streamed_answer_through_the_adapter(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    seen: dict[str, str] = {}

    async def handler(req: web.Request) -> web.StreamResponse:
        seen["auth"] = req.headers["Authorization"]
        seen["body"] = await req.text()
        # One event split across writes, and CRLF line ends: the reader must reassemble.
        return await sse(
            req,
            [
                CHUNK % "Hel",
                (CHUNK % "lo")[:30],
                (CHUNK % "lo")[30:].replace("\n", "\r\n"),
                FINISH,
                USAGE,
                "data: [DONE]\n\n",
            ],
        )

    base = await serve(handler)
    async with OpenAICompatibleAdapter(
        "t", base, transport=AiohttpTransport(max_connections=4)
    ) as a:
        got = await events(a)
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["Hel", "lo"]
    final = got[-1]
    assert isinstance(final, StreamFinished)
    assert final.usage is not None and final.usage.cost == Decimal("0.000012345678901234567")
    assert final.model_served == "m/served" and final.finish_reason == "stop"
    assert seen["auth"] == f"Bearer {KEY}" and '"stream": true' in seen["body"].replace(
        '":true', '": true'
    )


async def test_refused_connection_is_unreachable() -> None:
    transport = AiohttpTransport(max_connections=4)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")
    async with OpenAICompatibleAdapter(
        "t", "http://127.0.0.1:9/v1", max_retries=0, transport=AiohttpTransport(max_connections=4)
    ) as a:
        (failed,) = await events(a)
    assert isinstance(failed, StreamFailed) and not failed.partial
    assert isinstance(failed.error, ProviderUnavailableError)


async def test_a_silent_server_is_a_read_timeout(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    release = asyncio.Event()

    async def handler(req: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(req)
        await response.write((CHUNK % "a").encode())
        await release.wait()  # silent until the test is over
        return response

    base = await serve(handler)
    timeout = httpx.Timeout(5.0, read=0.2)
    async with httpx.AsyncClient(
        transport=AiohttpTransport(max_connections=4), timeout=timeout
    ) as client:
        async with client.stream("GET", base + "/") as response:
            with pytest.raises(httpx.ReadTimeout):
                async for _ in response.aiter_bytes():
                    pass
    async with OpenAICompatibleAdapter(
        "t", base, max_retries=0, timeout=timeout, transport=AiohttpTransport(max_connections=4)
    ) as a:
        got = await events(a)
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["a"]
    assert isinstance(got[-1], StreamFailed)
    assert (
        isinstance(got[-1].error, CutOffError) and got[-1].error.cause == RequestTimeoutError.kind
    )
    release.set()


async def test_a_dropped_connection_mid_stream_is_cut_off(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def handler(req: web.Request) -> web.StreamResponse:
        return await sse(req, [CHUNK % "a", CHUNK % "b", FINISH], drop_after=2)

    base = await serve(handler)
    async with OpenAICompatibleAdapter(
        "t", base, max_retries=0, transport=AiohttpTransport(max_connections=4)
    ) as a:
        got = await events(a)
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["a", "b"]
    final = got[-1]
    assert isinstance(final, StreamFailed) and final.partial
    assert isinstance(final.error, CutOffError) and final.error.cause == "dropped"


async def test_an_error_status_keeps_its_body(serve: Callable[[Handler], Awaitable[str]]) -> None:
    async def handler(req: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"error": {"code": 503, "message": "no provider"}},
            status=503,
            headers={"Retry-After": "1"},
        )

    base = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=4)) as client:
        response = await client.post(base + "/chat/completions", json={"a": 1})
    assert response.status_code == 503 and response.json()["error"]["message"] == "no provider"
    assert response.headers["retry-after"] == "1"


async def test_proxies_come_from_the_environment(
    serve: Callable[[Handler], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    targets: list[str] = []

    async def proxy(req: web.Request) -> web.StreamResponse:
        targets.append(str(req.url))
        return web.Response(text="via proxy")

    proxy_url = await serve(proxy)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "excluded.test")
    async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=4)) as client:
        response = await client.get("http://llm.test/api/v1/models")
        assert response.text == "via proxy"
        with pytest.raises(httpx.ConnectError):
            await client.get("http://excluded.test:9/")  # straight out: nothing listens there
    assert targets == ["http://llm.test/api/v1/models"]


def test_the_setting_picks_the_transport() -> None:
    assert isinstance(provider_transport("aiohttp", max_connections=8), AiohttpTransport)
    assert provider_transport("httpx", max_connections=8) is None


def reference_events(chunks: list[bytes]) -> list[str]:
    """What httpx-sse reads from the same bytes (via its line decoder and event decoder)."""
    lines, decoder = SSELineDecoder(), ReferenceDecoder()
    text = [c.decode("utf-8", "replace") for c in chunks if c]  # ASCII-safe splits below
    out: list[str] = []
    for line in [line for t in text for line in lines.decode(t)] + lines.flush():
        event = decoder.decode(line.rstrip("\n"))
        if event is not None and event.data:
            out.append(event.data)
    return out


PIECES = st.sampled_from(
    [
        "data: ",
        "data:",
        "data",
        "{}",
        "x",
        "[DONE]",
        ": comment",
        "event: e",
        "id: 1",
        "retry: 5",
        "\n",
        "\r",
        "\r\n",
        "\n\n",
        " ",
        "é",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PIECES, max_size=30), st.lists(st.integers(1, 8), min_size=1, max_size=40))
def test_the_sse_reader_reads_what_httpx_sse_reads(pieces: list[str], cuts: list[int]) -> None:
    body = "".join(pieces).encode()
    chunks, start = [], 0
    for size in cuts * (len(body) // max(1, sum(cuts)) + 1):
        if start >= len(body):
            break
        chunks.append(body[start : start + size])
        start += size
    if start < len(body):
        chunks.append(body[start:])
    # Compare on character boundaries (httpx-sse decodes text first, so the reference gets
    # whole characters); the byte-level reader is also fed the split bytes below.
    decoder = SSEDecoder()
    ours = [d for c in chunks for d in decoder.feed(c)] + decoder.close()
    whole = SSEDecoder()
    assert ours == [d for d in whole.feed(body)] + whole.close()
    assert ours == reference_events([body])
