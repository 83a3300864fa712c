"""adapters.catalogue and adapters.error_facts: GET /models read into plain records, one id's
check (served, retired, unknown), and the facts read from OpenRouter's error bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
import respx

from adapters.catalogue import (
    CatalogueEntry,
    CataloguePricing,
    ModelCheck,
    check_model,
    parse_catalogue,
)
from adapters.error_facts import (
    context_limit,
    forbidden_reason,
    is_context_overflow,
    is_retired_model,
)
from adapters.errors import MalformedResponseError
from adapters.fireworks import FireworksAdapter
from adapters.openai_compat import error_from_response
from adapters.openrouter import OpenRouterAdapter

BASE = "https://openrouter.ai/api/v1"

# The example of GET /models in reference/openrouter-openapi.yaml, plus an alias row.
OPENAPI_EXAMPLE = {
    "data": [
        {
            "architecture": {
                "input_modalities": ["text"],
                "instruct_type": "chatml",
                "modality": "text->text",
                "output_modalities": ["text"],
                "tokenizer": "GPT",
            },
            "canonical_slug": "openai/gpt-4",
            "context_length": 8192,
            "created": 1692901234,
            "default_parameters": None,
            "description": "GPT-4 is a large multimodal model.",
            "expiration_date": "2025-06-01",
            "id": "openai/gpt-4",
            "knowledge_cutoff": None,
            "links": {"details": "/api/v1/models/openai/gpt-4/endpoints"},
            "name": "GPT-4",
            "per_request_limits": None,
            "pricing": {
                "completion": "0.00006",
                "image": "0",
                "prompt": "0.00003",
                "request": "0",
                "web_search": "0.01",
            },
            "supported_parameters": ["temperature", "top_p", "max_tokens"],
            "supported_voices": None,
            "top_provider": {"context_length": 8192, "is_moderated": True},
        },
        {
            "id": "~anthropic/claude-sonnet-latest",
            "name": "Anthropic Claude Sonnet Latest",
            "pricing": {"prompt": "0.000002", "completion": "0.00001", "input_cache_read": "2e-7"},
            "alias_target": {"slug": "anthropic/claude-sonnet-5", "name": "Claude Sonnet 5"},
        },
        {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
        {"name": "no id: skipped"},
    ]
}


def test_parse_catalogue_reads_the_openapi_shape() -> None:
    gpt4, alias, auto = parse_catalogue(OPENAPI_EXAMPLE)
    assert gpt4 == CatalogueEntry(
        id="openai/gpt-4",
        name="GPT-4",
        canonical_slug="openai/gpt-4",
        pricing=CataloguePricing(Decimal(30), Decimal(60), None, Decimal("0.01")),
        context_length=8192,
        input_modalities=("text",),
        supported_parameters=("temperature", "top_p", "max_tokens"),
        expiration_date=date(2025, 6, 1),
        created=datetime.fromtimestamp(1692901234, UTC),
    )
    assert alias.alias_target == "anthropic/claude-sonnet-5"
    assert alias.pricing.cached_input_per_1m == Decimal("0.2")
    assert auto.pricing.input_per_1m is None  # variable pricing is unknown, not negative


def test_parse_catalogue_of_a_plain_openai_server_and_of_nonsense() -> None:
    [entry] = parse_catalogue(
        {"object": "list", "data": [{"id": "llama3.2:3b", "object": "model"}]}
    )
    assert entry == CatalogueEntry(id="llama3.2:3b")
    with pytest.raises(MalformedResponseError):
        parse_catalogue({"models": []})


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def adapter() -> AsyncIterator[OpenRouterAdapter]:
    async with OpenRouterAdapter(BASE) as a:
        yield a


async def test_list_catalogue_sends_no_key(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    route = router.get("/models").mock(return_value=httpx.Response(200, json=OPENAPI_EXAMPLE))
    entries = await adapter.list_catalogue()
    assert [e.id for e in entries] == [
        "openai/gpt-4",
        "~anthropic/claude-sonnet-latest",
        "openrouter/auto",
    ]
    assert "authorization" not in route.calls.last.request.headers


async def test_check_model_tells_retired_from_unknown(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    not_found = httpx.Response(404, json={"error": {"code": 404, "message": "Not found"}})
    router.get("/model/old/retired").mock(return_value=not_found)
    router.get("/models/old/retired/endpoints").mock(
        return_value=httpx.Response(200, json={"data": {"id": "old/retired", "endpoints": []}})
    )
    router.get("/model/no/such").mock(return_value=not_found)
    router.get("/models/no/such/endpoints").mock(return_value=not_found)
    router.get("/model/~anthropic/claude-sonnet-latest").mock(
        return_value=httpx.Response(
            200, json={"data": {"id": "~anthropic/claude-sonnet-latest", "name": "Latest",
                                "pricing": {"prompt": "0.000002", "completion": "0.00001"}}}
        )
    )  # fmt: skip
    assert await adapter.check_model("old/retired", None) == ModelCheck("no_endpoints")
    assert await adapter.check_model("no/such", None) == ModelCheck("unknown")
    alias = await adapter.check_model("~anthropic/claude-sonnet-latest", None)
    assert alias.status == "served" and alias.info is not None
    assert alias.info.pricing.input_per_1m == Decimal(2)


async def test_check_model_falls_back_to_lookup_for_other_adapters(
    router: respx.MockRouter,
) -> None:
    fireworks_base = "https://api.fireworks.ai/inference/v1"
    with respx.mock(base_url=fireworks_base) as fw:
        fw.get("/models").mock(
            return_value=httpx.Response(200, json={"data": [{"id": "accounts/f/models/m"}]})
        )
        async with FireworksAdapter(fireworks_base) as fireworks:
            found = await check_model(fireworks, "accounts/f/models/m", None)
            missing = await check_model(fireworks, "accounts/f/models/x", None)
    assert found.status == "served" and missing == ModelCheck("unknown")


def _error(status: int, body: dict[str, object]):  # type: ignore[no-untyped-def]
    return error_from_response(status, json.dumps(body).encode(), {}, model="a/b")


@pytest.mark.parametrize(
    ("metadata", "message", "reason"),
    [
        (
            {"limit_source": "openrouter_key_limit", "limit_usd": 5},
            "Key limit exceeded",
            "key_limit",
        ),
        ({"limit_source": "openrouter_guardrail_budget"}, "Budget limit exceeded", "budget_limit"),
        ({"limit_source": "openrouter_workspace_budget"}, "Budget limit exceeded", "budget_limit"),
        ({"reasons": ["violence"], "flagged_input": "…"}, "Input flagged", "moderation"),
        ({"guardrail_id": "g-1"}, "Request blocked: model not allowed", "guardrail"),
        (None, "Request blocked by guardrail: prompt injection", "guardrail"),
        (None, "Forbidden", "moderation"),
    ],
)
def test_403_reasons(metadata: dict[str, object] | None, message: str, reason: str) -> None:
    body: dict[str, object] = {"code": 403, "message": message}
    if metadata is not None:
        body["metadata"] = metadata
    error = _error(403, {"error": body})
    assert forbidden_reason(error) == reason
    assert "flagged_input" not in error.metadata  # the user's text is not kept


def test_retired_and_context_overflow_facts() -> None:
    retired = _error(404, {"error": {"code": 404, "message": "No endpoints found for a/b."}})
    policy = _error(
        404, {"error": {"code": 404, "message": "No endpoints found matching your data policy"}}
    )
    assert is_retired_model(retired) and not is_retired_model(policy)
    overflow = _error(
        400,
        {"error": {"code": 400, "message": "This endpoint's maximum context length is 131,072 "
                   "tokens. However, you requested about 150000 tokens."}},
    )  # fmt: skip
    assert is_context_overflow(overflow) and context_limit(overflow) == 131072
    plain = _error(400, {"error": {"code": 400, "message": "temperature must be <= 2"}})
    assert not is_context_overflow(plain) and forbidden_reason(plain) is None
