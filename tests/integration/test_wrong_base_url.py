"""A base URL with the wrong path: the fake OpenRouter serves ``/api/v1``, routerbot is pointed
at ``/api/v2`` (over real HTTP), where ``GET /key`` and ``GET /models`` answer 404 with
aiohttp's plain-text page. That must read as a wrong OPENROUTER_BASE_URL, not as an unknown
model, and must not echo the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.errors import EndpointNotFoundError
from adapters.openrouter import OpenRouterAdapter
from bot.config import Settings
from bot.core.messages import provider_sentence
from bot.core.replies import ErrorReply, Invocation
from bot.runtime import build_runtime
from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter

ADMIN = Invocation("console", "acme", "general", "alice", is_admin=True)


@pytest.fixture
async def wrong_url() -> AsyncIterator[str]:
    async with FakeOpenRouter() as fake:
        assert fake.base_url.endswith("/api/v1")
        yield fake.base_url.removesuffix("/api/v1") + "/api/v2"


async def test_a_404_on_get_key_is_the_base_url_not_a_model(wrong_url: str) -> None:
    async with OpenRouterAdapter(wrong_url) as adapter:
        with pytest.raises(EndpointNotFoundError) as caught:
            await adapter.check_key(SecretStr(DEFAULT_KEY))
    error = caught.value
    assert (error.provider, error.url, error.status_code) == ("openrouter", f"{wrong_url}/key", 404)
    assert provider_sentence(error) == (
        f"OpenRouter answered 404 at {wrong_url}/key: check OPENROUTER_BASE_URL."
    )


async def test_a_404_on_the_models_list_is_the_base_url_too(wrong_url: str) -> None:
    async with OpenRouterAdapter(wrong_url, compat_fallback=True) as adapter:
        with pytest.raises(EndpointNotFoundError) as caught:
            await adapter.lookup_model("llama3.2:3b", None)
    assert caught.value.url == f"{wrong_url}/models"


async def test_apikey_set_names_the_setting_to_check(wrong_url: str, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'rb.db'}",
        routerbot_secret_key=SecretStr(generate_key()),
        openrouter_base_url=wrong_url,
        routerbot_data_dir=tmp_path,
    )
    rt, _ = await build_runtime(settings)
    try:
        replies = [r async for r in rt.dispatcher.run_text(ADMIN, f"/apikey set {DEFAULT_KEY}")]
    finally:
        await rt.aclose()
    assert len(replies) == 1 and isinstance(replies[0], ErrorReply)
    # A loopback host is not openrouter.ai, so the key is checked on /models after /key.
    assert replies[0].text == (
        f"Could not verify the key with OpenRouter: OpenRouter answered 404 at "
        f"{wrong_url}/models: check OPENROUTER_BASE_URL; nothing was stored."
    )
    assert DEFAULT_KEY not in replies[0].text
