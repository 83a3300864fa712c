"""The fake OpenRouter's catalogue over real HTTP: the shapes routerbot reads, and the controls
that retire a model or change a price while a client is connected."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter, Fault
from tests.fakes.openrouter_catalogue import LATE_2026_MODELS, RETIRED_IN_2026


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter(models=LATE_2026_MODELS + RETIRED_IN_2026) as server:
        yield server


@pytest.fixture
async def http(fake: FakeOpenRouter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url + "/") as client:
        yield client


def _chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}


AUTH = {"Authorization": f"Bearer {DEFAULT_KEY}"}


async def test_models_list_has_the_openapi_fields(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    data = (await http.get("models")).json()["data"]
    by_id = {m["id"]: m for m in data}
    sonnet = by_id["anthropic/claude-sonnet-5"]
    for field in ("canonical_slug", "name", "created", "context_length", "pricing"):
        assert field in sonnet
    assert sonnet["pricing"]["prompt"] == "0.000002"
    assert sonnet["pricing"]["web_search"] == "0.01"
    assert sonnet["architecture"]["input_modalities"] == ["text", "image", "file"]
    assert sonnet["expiration_date"] is None
    alias = by_id["~anthropic/claude-sonnet-latest"]
    assert alias["alias_target"]["slug"] == "anthropic/claude-sonnet-5"
    assert fake.catalogue.list_calls == 1


async def test_retire_and_price_change_while_running(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.catalogue.retire("anthropic/claude-3.5-sonnet")
    fake.catalogue.set_price("openai/gpt-5-mini", prompt="0.0000003")
    fake.catalogue.expire("google/gemini-2.0-flash-001", "2026-02-01")
    data = {m["id"]: m for m in (await http.get("models")).json()["data"]}
    assert "anthropic/claude-3.5-sonnet" not in data
    assert data["openai/gpt-5-mini"]["pricing"]["prompt"] == "0.0000003"
    assert data["google/gemini-2.0-flash-001"]["expiration_date"] == "2026-02-01"

    gone = await http.post(
        "chat/completions", json=_chat("anthropic/claude-3.5-sonnet"), headers=AUTH
    )
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == "No endpoints found for anthropic/claude-3.5-sonnet."
    # The model route forgets it; its endpoints page remains, with no endpoints.
    assert (await http.get("model/anthropic/claude-3.5-sonnet")).status_code == 404
    page = await http.get("models/anthropic/claude-3.5-sonnet/endpoints")
    assert page.status_code == 200 and page.json()["data"]["endpoints"] == []
    # An id that never existed is unknown everywhere.
    assert (await http.get("models/nobody/nothing/endpoints")).status_code == 404


async def test_variants_and_aliases(fake: FakeOpenRouter, http: httpx.AsyncClient) -> None:
    nitro = (await http.get("model/openai/gpt-5-mini:nitro")).json()["data"]
    assert nitro["id"] == "openai/gpt-5-mini:nitro"
    assert nitro["pricing"]["prompt"] == "0.00000025"
    # :free is its own row: a free variant that does not exist is not the paid model.
    assert (await http.get("model/openai/gpt-5-mini:free")).status_code == 404
    answer = await http.post(
        "chat/completions", json=_chat("~anthropic/claude-sonnet-latest"), headers=AUTH
    )
    assert answer.status_code == 200
    assert answer.json()["model"] == "anthropic/claude-sonnet-5"


async def test_http_fault_carries_error_metadata(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.script(
        Fault.http(
            403, message="Key limit exceeded", metadata={"limit_source": "openrouter_key_limit"}
        )
    )
    refused = await http.post("chat/completions", json=_chat("openai/gpt-5-mini"), headers=AUTH)
    assert refused.status_code == 403
    assert refused.json()["error"]["metadata"] == {"limit_source": "openrouter_key_limit"}
