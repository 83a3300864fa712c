"""The request and response shapes of richer chats, per OpenRouter's OpenAPI description:
content parts (``image_url``, ``file``) with data URLs, the ``file-parser`` plugin, the
``openrouter:web_search`` tool, ``reasoning.effort``; ``url_citation`` annotations and
``server_tool_use_details.web_search_requests`` read back; reasoning deltas never shown."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from adapters.base import (
    ChatMessage,
    ChatRequest,
    Citation,
    FilePart,
    ImagePart,
    StreamFinished,
    TextDelta,
    WebSearch,
)
from adapters.fireworks import FireworksAdapter
from adapters.openai_compat.chunks import parse_citations, parse_usage
from adapters.openrouter import OpenRouterAdapter

BASE = "https://openrouter.test/api/v1"
KEY = SecretStr("sk-or-v1-unit-richer")
PNG = b"\x89PNG\r\n\x1a\n-not-really"
PDF = b"%PDF-1.7 body"


def _request(**overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {
        "model": "anthropic/claude-sonnet-5",
        "messages": [
            ChatMessage("assistant", "earlier"),
            ChatMessage(
                "user",
                "What is in these?",
                parts=(ImagePart("image/png", PNG), FilePart("q3.pdf", "application/pdf", PDF)),
            ),
        ],
        "api_key": KEY,
    }
    fields.update(overrides)
    return ChatRequest(**fields)


def test_openrouter_body_carries_parts_plugin_tool_and_effort() -> None:
    adapter = OpenRouterAdapter(BASE)
    body = adapter.build_body(
        _request(web_search=WebSearch(max_results=5, max_uses=3), reasoning_effort="high")
    )
    assert body["messages"][0] == {"role": "assistant", "content": "earlier"}
    text, image, file = body["messages"][1]["content"]
    assert text == {"type": "text", "text": "What is in these?"}
    assert image == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert file == {
        "type": "file",
        "file": {
            "filename": "q3.pdf",
            "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
        },
    }
    assert body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "native"}}]
    assert body["tools"] == [
        {"type": "openrouter:web_search", "parameters": {"max_results": 5, "max_uses": 3}}
    ]
    assert body["reasoning"] == {"effort": "high"}
    assert "reasoning_effort" not in body


def test_plain_chats_send_plain_strings_and_nothing_extra() -> None:
    body = OpenRouterAdapter(BASE).build_body(
        _request(messages=[ChatMessage("user", "hi", parts=(ImagePart("image/png", PNG),))])
    )
    assert "plugins" not in body and "tools" not in body and "reasoning" not in body
    plain = OpenRouterAdapter(BASE).build_body(_request(messages=[ChatMessage("user", "hi")]))
    assert plain["messages"] == [{"role": "user", "content": "hi"}]
    assert not {"plugins", "tools", "reasoning"} & set(plain)


def test_other_providers_get_openais_reasoning_effort_and_no_openrouter_fields() -> None:
    body = FireworksAdapter("https://fw.test/v1").build_body(
        _request(reasoning_effort="low", web_search=WebSearch(5, 3))
    )
    assert body["reasoning_effort"] == "low"
    assert not {"plugins", "tools", "reasoning"} & set(body)


def test_usage_reads_web_searches_from_either_shape() -> None:
    usage = parse_usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost": Decimal("0.0212"),
            "server_tool_use_details": {"tool_calls_requested": 2, "web_search_requests": 2},
        }
    )
    assert usage is not None and usage.web_search_requests == 2
    older = parse_usage({"prompt_tokens": 1, "server_tool_use": {"web_search_requests": 1}})
    assert older is not None and older.web_search_requests == 1
    none = parse_usage({"prompt_tokens": 1, "server_tool_use_details": None})
    assert none is not None and none.web_search_requests == 0


def test_citations_nested_and_flat() -> None:
    raw = [
        {"type": "url_citation", "url_citation": {"url": "https://a.test/x", "title": "A"}},
        {"type": "url_citation", "url": "https://b.test/", "title": "B", "start_index": 0},
        {"type": "file_citation", "file_id": "f"},
        {"type": "url_citation", "url_citation": {"url": ""}},
        "junk",
    ]
    assert parse_citations(raw) == [
        Citation("https://a.test/x", "A"),
        Citation("https://b.test/", "B"),
    ]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def adapter() -> AsyncIterator[OpenRouterAdapter]:
    async with OpenRouterAdapter(BASE, max_retries=0) as a:
        yield a


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    payload = {
        "id": "gen-1",
        "model": "anthropic/claude-sonnet-5",
        "object": "chat.completion.chunk",
        "created": 1,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n"


async def test_stream_hides_reasoning_and_returns_citations_and_searches(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    citation = {"type": "url_citation", "url_citation": {"url": "https://n.test/a", "title": "N"}}
    usage = {
        "id": "gen-1",
        "model": "anthropic/claude-sonnet-5",
        "object": "chat.completion.chunk",
        "created": 1,
        "choices": [],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "completion_tokens_details": {"reasoning_tokens": 30},
            "cost": 0.0123,
            "server_tool_use_details": {"web_search_requests": 1},
        },
    }
    body = "".join(
        [
            ": OPENROUTER PROCESSING\n\n",
            _chunk({"role": "assistant", "reasoning": "secret plan"}),
            _chunk({"reasoning_details": [{"type": "reasoning.text", "text": "more"}]}),
            _chunk({"content": "It rained."}),
            _chunk({"content": "", "annotations": [citation]}, finish="stop"),
            f"data: {json.dumps(usage)}\n\n",
            "data: [DONE]\n\n",
        ]
    )
    route = router.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, text=body)
    )
    events = [e async for e in adapter.stream_chat(_request(reasoning_effort="medium"))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "It rained."
    end = events[-1]
    assert isinstance(end, StreamFinished)
    assert end.citations == (Citation("https://n.test/a", "N"),)
    assert end.usage is not None
    assert (end.usage.reasoning_tokens, end.usage.web_search_requests) == (30, 1)
    assert end.usage.cost == Decimal("0.0123")
    sent = json.loads(route.calls[0].request.content)
    assert sent["reasoning"] == {"effort": "medium"}
