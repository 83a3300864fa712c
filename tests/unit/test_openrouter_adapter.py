"""OpenRouterAdapter's own endpoints (respx-mocked): model lookup and its 404 → endpoints
fallback, per-token → per-1M pricing, ``GET /key``, ``GET /generation`` polling; plus the
generic OpenAI-compatible versions and the adapter registry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest
import respx
import stamina
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from adapters.base import GenerationInfo, KeyInfo, ModelInfo, ModelPricing
from adapters.errors import (
    AuthenticationError,
    BadRequestError,
    ModerationError,
    ProviderUnavailableError,
)
from adapters.fireworks import is_fireworks_model_id
from adapters.openai_compat import OpenAICompatibleAdapter
from adapters.openrouter import (
    GENERATION_LOOKUP_ATTEMPTS,
    OpenRouterAdapter,
    parse_model_id,
    per_token_to_per_1m,
)
from bot.core.messages import provider_sentence

BASE = "https://openrouter.ai/api/v1"
KEY = SecretStr("sk-or-v1-lookup-secret-00112233445566778899aabbccddeeff")


@pytest.fixture(autouse=True)
def _no_backoff_sleeps() -> Iterator[None]:
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def adapter() -> AsyncIterator[OpenRouterAdapter]:
    async with OpenRouterAdapter(BASE, app_url="https://example.org/bot", app_title="rb") as a:
        yield a


def model_body(model_id: str, **pricing: str) -> dict[str, object]:
    return {
        "data": {
            "id": model_id,
            "canonical_slug": model_id,
            "name": "Claude 3.5 Sonnet",
            "context_length": 200000,
            "pricing": pricing or {"prompt": "0.000003", "completion": "0.000015"},
        }
    }


def not_found() -> httpx.Response:
    return httpx.Response(404, json={"error": {"code": 404, "message": "Model not found"}})


# ---- pricing and ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_token", "per_1m"),
    [
        ("0.000003", Decimal("3")),
        ("0.000015", Decimal("15")),
        ("0.0000003", Decimal("0.3")),
        ("0.00000015", Decimal("0.15")),
        ("0.000000075", Decimal("0.075")),
        ("0", Decimal("0")),
        ("1", Decimal("1000000")),
        ("-1", None),  # variable pricing (openrouter/auto)
        ("", None),
        ("free", None),
        (None, None),
    ],
)
def test_per_token_to_per_1m(per_token: str | None, per_1m: Decimal | None) -> None:
    result = per_token_to_per_1m(per_token)
    assert result == per_1m
    if per_1m is not None:
        assert str(result) == str(per_1m)  # no "3.000000" or "1E+6" in prices shown to users


@given(st.decimals(min_value=0, max_value=1, places=12, allow_nan=False))
def test_per_token_to_per_1m_is_exact(per_token: Decimal) -> None:
    assert per_token_to_per_1m(str(per_token)) == per_token * 1_000_000


@pytest.mark.parametrize(
    ("model_id", "parsed"),
    [
        ("anthropic/claude-3.5-sonnet", ("anthropic", "claude-3.5-sonnet", None)),
        ("meta-llama/llama-3.1-8b-instruct:free", ("meta-llama", "llama-3.1-8b-instruct", "free")),
        ("openai/gpt-4o:nitro", ("openai", "gpt-4o", "nitro")),
        ("~anthropic/claude-sonnet-latest", ("~anthropic", "claude-sonnet-latest", None)),
        ("gpt-4o", None),
        ("openai/", None),
        ("/gpt-4o", None),
        ("a/b/c", None),
        ("openai/gpt 4o", None),
        ("openai/gpt-4o:", None),
        ("", None),
    ],
)
def test_parse_model_id(model_id: str, parsed: tuple[str, str, str | None] | None) -> None:
    assert parse_model_id(model_id) == parsed


# ---- lookup_model -------------------------------------------------------------------------


async def test_lookup_model_converts_pricing_to_per_1m(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    route = router.get("/model/anthropic/claude-3.5-sonnet").mock(
        return_value=httpx.Response(
            200,
            json=model_body(
                "anthropic/claude-3.5-sonnet",
                prompt="0.000003",
                completion="0.000015",
                input_cache_read="0.0000003",
                request="0",
            ),
        )
    )
    info = await adapter.lookup_model("anthropic/claude-3.5-sonnet", KEY)

    assert info == ModelInfo(
        id="anthropic/claude-3.5-sonnet",
        name="Claude 3.5 Sonnet",
        pricing=ModelPricing(
            input_per_1m=Decimal("3"),
            output_per_1m=Decimal("15"),
            cached_input_per_1m=Decimal("0.3"),
        ),
        context_length=200000,
    )
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY.get_secret_value()}"
    assert sent.headers["http-referer"] == "https://example.org/bot"
    assert sent.headers["x-openrouter-title"] == "rb"
    assert sent.headers["x-title"] == "rb"


async def test_lookup_model_keeps_the_variant_suffix(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    model_id = "meta-llama/llama-3.1-8b-instruct:free"
    route = router.get(f"/model/{model_id}").mock(
        return_value=httpx.Response(200, json=model_body(model_id, prompt="0", completion="0"))
    )
    info = await adapter.lookup_model(model_id, None)
    assert route.called
    assert info is not None and info.id == model_id
    assert info.pricing == ModelPricing(Decimal(0), Decimal(0), None)
    assert "authorization" not in route.calls.last.request.headers


async def test_lookup_model_falls_back_to_endpoints_on_404(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    model_id = "mistralai/mistral-small"
    first = router.get(f"/model/{model_id}").mock(return_value=not_found())
    endpoints = router.get(f"/models/{model_id}/endpoints").mock(
        return_value=httpx.Response(
            200,
            json={
                "data": {
                    "id": model_id,
                    "name": "Mistral Small",
                    "endpoints": [
                        {
                            "provider_name": "Pricey",
                            "context_length": 32000,
                            "pricing": {"prompt": "0.000002", "completion": "0.000006"},
                        },
                        {
                            "provider_name": "Cheap",
                            "context_length": 32000,
                            "pricing": {
                                "prompt": "0.0000002",
                                "completion": "0.0000006",
                                "input_cache_read": "0.00000002",
                            },
                        },
                        {"provider_name": "Unpriced", "pricing": {"prompt": "-1"}},
                    ],
                }
            },
        )
    )
    info = await adapter.lookup_model(model_id, KEY)

    assert first.called and endpoints.called
    assert info == ModelInfo(
        id=model_id,
        name="Mistral Small",
        pricing=ModelPricing(Decimal("0.2"), Decimal("0.6"), Decimal("0.02")),
        context_length=32000,
    )


async def test_lookup_model_unknown_after_both_404s_without_fetching_the_catalogue(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    router.get("/model/nobody/nothing").mock(return_value=not_found())
    router.get("/models/nobody/nothing/endpoints").mock(return_value=not_found())
    catalogue = router.get("/models").mock(return_value=httpx.Response(200, json={"data": []}))

    assert await adapter.lookup_model("nobody/nothing", KEY) is None
    assert not catalogue.called


@pytest.mark.parametrize("bad_id", ["gpt-4o", "a/b/c", "openai/", "openai/gpt 4o"])
async def test_lookup_model_rejects_malformed_ids_without_asking(
    router: respx.MockRouter, adapter: OpenRouterAdapter, bad_id: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await adapter.lookup_model(bad_id, KEY)
    assert bad_id in provider_sentence(caught.value)
    assert not router.calls


async def test_lookup_model_raises_when_the_provider_cannot_be_asked(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    router.get("/model/openai/gpt-4o").mock(
        return_value=httpx.Response(500, json={"error": {"code": 500, "message": "oops"}})
    )
    with pytest.raises(ProviderUnavailableError):
        await adapter.lookup_model("openai/gpt-4o", KEY)

    router.get("/model/openai/gpt-4o-mini").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ProviderUnavailableError):
        await adapter.lookup_model("openai/gpt-4o-mini", KEY)


async def test_compat_fallback_uses_the_openai_model_list() -> None:
    local = "http://127.0.0.1:8080/v1"
    with respx.mock(base_url=local) as mock:
        mock.get("/model/qwen/qwen2.5-7b").mock(return_value=httpx.Response(404))
        mock.get("/models/qwen/qwen2.5-7b/endpoints").mock(return_value=httpx.Response(404))
        mock.get("/models").mock(
            return_value=httpx.Response(
                200, json={"object": "list", "data": [{"id": "qwen/qwen2.5-7b"}]}
            )
        )
        async with OpenRouterAdapter(local, compat_fallback=True) as a:
            info = await a.lookup_model("qwen/qwen2.5-7b", None)
    assert info == ModelInfo(id="qwen/qwen2.5-7b")


# ---- check_key ----------------------------------------------------------------------------


async def test_check_key_reads_data(router: respx.MockRouter, adapter: OpenRouterAdapter) -> None:
    route = router.get("/key").mock(
        return_value=httpx.Response(
            200,
            json={
                "data": {
                    "label": "sk-or-v1-au7...890",
                    "limit": 100,
                    "limit_remaining": 74.5,
                    "usage": 25.5,
                    "is_free_tier": False,
                }
            },
        )
    )
    info = await adapter.check_key(KEY)
    assert info == KeyInfo(
        label="sk-or-v1-au7...890",
        limit=Decimal("100"),
        limit_remaining=Decimal("74.5"),
        usage=Decimal("25.5"),
    )
    assert route.calls.last.request.headers["authorization"] == (f"Bearer {KEY.get_secret_value()}")


async def test_check_key_without_limit(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    router.get("/key").mock(
        return_value=httpx.Response(
            200, json={"data": {"label": "x", "limit": None, "limit_remaining": None, "usage": 0}}
        )
    )
    assert await adapter.check_key(KEY) == KeyInfo(label="x", usage=Decimal(0))


async def test_check_key_401(router: respx.MockRouter, adapter: OpenRouterAdapter) -> None:
    router.get("/key").mock(
        return_value=httpx.Response(
            401, json={"error": {"code": 401, "message": "No auth credentials found"}}
        )
    )
    with pytest.raises(AuthenticationError) as caught:
        await adapter.check_key(KEY)
    secret = KEY.get_secret_value()
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert "/apikey" in provider_sentence(caught.value)


async def test_check_key_403_is_not_a_bad_key(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    router.get("/key").mock(return_value=httpx.Response(403, json={"error": {"code": 403}}))
    with pytest.raises(ModerationError):
        await adapter.check_key(KEY)


# ---- get_generation -----------------------------------------------------------------------

GENERATION = {
    "data": {
        "id": "gen-123",
        "model": "anthropic/claude-3.5-sonnet",
        "provider_name": "Anthropic",
        "total_cost": 0.0015,
        "tokens_prompt": 10,
        "tokens_completion": 25,
        "native_tokens_prompt": 11,
        "native_tokens_completion": 26,
        "native_tokens_cached": 3,
    }
}


async def test_get_generation_retries_404_then_reads(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    route = router.get("/generation", params={"id": "gen-123"}).mock(
        side_effect=[not_found(), not_found(), httpx.Response(200, json=GENERATION)]
    )
    info = await adapter.get_generation("gen-123", KEY)
    assert info == GenerationInfo(
        id="gen-123",
        total_cost=Decimal("0.0015"),
        model="anthropic/claude-3.5-sonnet",
        provider_name="Anthropic",
        tokens_prompt=10,
        tokens_completion=25,
        native_tokens_prompt=11,
        native_tokens_completion=26,
        native_tokens_cached=3,
    )
    assert route.call_count == 3


async def test_get_generation_gives_up_with_none(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    route = router.get("/generation").mock(return_value=not_found())
    assert await adapter.get_generation("gen-missing", KEY) is None
    assert route.call_count == GENERATION_LOOKUP_ATTEMPTS


async def test_get_generation_other_errors_raise(
    router: respx.MockRouter, adapter: OpenRouterAdapter
) -> None:
    route = router.get("/generation").mock(
        return_value=httpx.Response(401, json={"error": {"code": 401, "message": "nope"}})
    )
    with pytest.raises(AuthenticationError):
        await adapter.get_generation("gen-1", KEY)
    assert route.call_count == 1


# ---- headers ------------------------------------------------------------------------------


async def test_no_referer_without_app_url(router: respx.MockRouter) -> None:
    route = router.get("/key").mock(return_value=httpx.Response(200, json={"data": {}}))
    async with OpenRouterAdapter(BASE) as a:
        await a.check_key(KEY)
    headers = route.calls.last.request.headers
    assert "http-referer" not in headers
    assert headers["x-openrouter-title"] == "routerbot"


# ---- the generic OpenAI-compatible versions ----------------------------------------------


async def test_generic_lookup_check_and_generation() -> None:
    base = "https://compat.test/v1"
    with respx.mock(base_url=base) as mock:
        models = mock.get("/models").mock(
            return_value=httpx.Response(
                200,
                json={"object": "list", "data": [{"id": "m-1", "object": "model"}, {"id": "m-2"}]},
            )
        )
        async with OpenAICompatibleAdapter("local", base) as a:
            assert await a.lookup_model("m-2", KEY) == ModelInfo(id="m-2")
            assert await a.lookup_model("m-3", KEY) is None
            assert await a.check_key(KEY) == KeyInfo()
            assert await a.get_generation("gen-x", KEY) is None
        assert models.call_count == 3

        mock.get("/models").mock(return_value=httpx.Response(401, json={"error": "bad key"}))
        async with OpenAICompatibleAdapter("local", base) as a:
            with pytest.raises(AuthenticationError):
                await a.check_key(KEY)


def test_is_fireworks_model_id() -> None:
    assert is_fireworks_model_id("accounts/fireworks/models/deepseek-v3")
    assert is_fireworks_model_id("accounts/me/deployments/abc123")
    assert not is_fireworks_model_id("openai/gpt-4o")


def test_json_numbers_in_key_info_are_not_floats() -> None:
    # Sanity for the helper the adapters share: JSON floats become Decimals, ints stay ints.
    from adapters.openai_compat import loads_exact

    parsed = loads_exact(json.dumps({"a": 0.1, "b": 2}))
    assert parsed == {"a": Decimal("0.1"), "b": 2}
