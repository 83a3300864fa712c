"""The fake OpenRouter is strict about richer requests, as the real API is, and answers them
in the OpenAPI shapes (so routerbot's tests against it mean something)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.openrouter import DEFAULT_KEY, DEFAULT_MODELS, FakeOpenRouter
from tests.fakes.openrouter_richer import REASONING_TEXT
from tests.integration.richer_support import RICH, RICH_ID, TEXT_ONLY_ID, data_url, png

HEADERS = {"Authorization": f"Bearer {DEFAULT_KEY}"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    models = [RICH, *(m for m in DEFAULT_MODELS if m.id != RICH_ID)]
    async with FakeOpenRouter(models=models) as server:
        yield server


async def _post(fake: FakeOpenRouter, **body: Any) -> httpx.Response:
    body.setdefault("model", RICH_ID)
    async with httpx.AsyncClient() as client:
        return await client.post(f"{fake.base_url}/chat/completions", json=body, headers=HEADERS)


def _user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "hi"}, *parts]}]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"messages": _user({"type": "image_url", "image_url": {"url": "data:image/png,xx"}})},
            400,
            "image_url.url: not a URL or base64 data URL",
        ),
        (
            {"messages": _user({"type": "file", "file": {"file_data": "https://x.test/a.pdf"}})},
            400,
            "file.filename is required",
        ),
        ({"messages": _user({"type": "video"})}, 400, "invalid content part"),
        (
            {"messages": _user(), "tools": [{"type": "openrouter:web_fetch"}]},
            400,
            "unknown tool type",
        ),
        ({"messages": _user(), "reasoning": {"effort": "huge"}}, 400, "reasoning.effort"),
        (
            {"messages": _user(), "plugins": [{"id": "file-parser", "pdf": {"engine": "x"}}]},
            400,
            "unknown pdf engine",
        ),
        (
            {
                "model": TEXT_ONLY_ID,
                "messages": _user(
                    {"type": "image_url", "image_url": {"url": data_url("image/png", png())}}
                ),
            },
            404,
            "No endpoints found that support image input",
        ),
    ],
)
async def test_malformed_or_unsupported_requests_are_refused(
    fake: FakeOpenRouter, body: dict[str, Any], status: int, message: str
) -> None:
    response = await _post(fake, **body)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


async def test_a_searching_reasoning_answer_in_openrouters_shapes(fake: FakeOpenRouter) -> None:
    fake.script(answer="Sunny.", web_searches=2)
    response = await _post(
        fake,
        messages=_user({"type": "image_url", "image_url": {"url": data_url("image/png", png())}}),
        tools=[{"type": "openrouter:web_search", "parameters": {"max_results": 3}}],
        reasoning={"effort": "medium"},
        stream=False,
    )
    assert response.status_code == 200, response.text
    result = json.loads(response.text, parse_float=Decimal)
    message = result["choices"][0]["message"]
    assert message["content"] == "Sunny." and message["reasoning"] == REASONING_TEXT
    assert message["annotations"][0]["type"] == "url_citation"
    assert message["annotations"][0]["url_citation"]["url"] == "https://news.example/1"
    usage = result["usage"]
    assert usage["server_tool_use_details"]["web_search_requests"] == 2
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 256
    tokens = usage["prompt_tokens"] * Decimal(RICH.prompt) + usage["completion_tokens"] * Decimal(
        RICH.completion
    )
    assert usage["cost"] == tokens + 2 * Decimal("0.01")
