"""adapters.registry: each provider's facts, the lookups, and the adapters it builds."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import SecretStr

from adapters.base import ProviderAdapter
from adapters.fireworks import FireworksAdapter
from adapters.openrouter import OpenRouterAdapter
from adapters.registry import (
    DEFAULT_PROVIDER,
    FIREWORKS,
    OPENROUTER,
    PROVIDERS,
    build_adapters,
    display_name,
    find_provider,
    provider_for_key,
    provider_for_model,
    provider_names,
)
from bot.config import Settings

BASE = "https://openrouter.ai/api/v1"


def test_the_providers_and_their_names() -> None:
    assert provider_names() == ("openrouter", "fireworks")
    assert PROVIDERS[0] is DEFAULT_PROVIDER is OPENROUTER
    assert (OPENROUTER.display_name, FIREWORKS.display_name) == ("OpenRouter", "Fireworks")
    assert find_provider("fireworks") is FIREWORKS
    assert find_provider("FireWorks") is FIREWORKS
    assert find_provider("anthropic") is None
    assert find_provider(None) is None
    assert find_provider("") is None
    assert display_name("openrouter") == "OpenRouter"
    assert display_name("somewhere-else") == "somewhere-else"


@pytest.mark.parametrize(
    ("model_id", "provider"),
    [
        ("accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks"),
        ("accounts/me/deployments/abc123", "fireworks"),
        ("anthropic/claude-3.5-sonnet", "openrouter"),
        ("meta-llama/llama-3.1-8b-instruct:free", "openrouter"),
        ("llama3.2:3b", "openrouter"),
    ],
)
def test_provider_for_model(model_id: str, provider: str) -> None:
    assert provider_for_model(model_id) == provider


@pytest.mark.parametrize(
    ("key", "provider"),
    [
        ("fw_3ZabcdefGhijklmnop", "fireworks"),
        ("sk-or-v1-0123456789abcdef", "openrouter"),
        ("local-key-123456", "openrouter"),  # unclaimed: the default provider
    ],
)
def test_provider_for_key(key: str, provider: str) -> None:
    assert provider_for_key(key) == provider


def test_key_hints_for_forms() -> None:
    assert [p.key_hint for p in PROVIDERS] == ["sk-or-…", "fw_…"]


def test_every_named_setting_exists_and_is_read() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openrouter_base_url="http://or.test/v1",
        openrouter_api_key=SecretStr("sk-or-v1-fallback"),
        fireworks_base_url="http://fw.test/v1",
    )
    for provider in PROVIDERS:
        assert provider.base_url_setting in Settings.model_fields
        assert provider.api_key_setting in Settings.model_fields
    assert settings.base_urls() == {
        "openrouter": "http://or.test/v1",
        "fireworks": "http://fw.test/v1",
    }
    fallback = settings.fallback_key("openrouter")
    assert fallback is not None and fallback.get_secret_value() == "sk-or-v1-fallback"
    assert settings.fallback_key("fireworks") is None
    assert settings.fallback_key("nowhere") is None


async def test_build_adapters() -> None:
    adapters = build_adapters(
        {"openrouter": BASE, "fireworks": "https://api.fireworks.ai/inference/v1"},
        app_url="https://example.org",
        app_title="routerbot",
    )
    try:
        assert list(adapters) == ["openrouter", "fireworks"]
        for name, adapter in adapters.items():
            assert adapter.name == name
            assert isinstance(adapter, ProviderAdapter)
        openrouter = adapters["openrouter"]
        assert isinstance(openrouter, OpenRouterAdapter) and not openrouter.compat_fallback
        assert isinstance(adapters["fireworks"], FireworksAdapter)
    finally:
        for adapter in adapters.values():
            await adapter.aclose()

    local = build_adapters(
        {"openrouter": "http://127.0.0.1:11434/v1", "fireworks": "https://fw.test/v1"},
        app_url=None,
        app_title="rb",
    )
    try:
        router_adapter = local["openrouter"]
        assert isinstance(router_adapter, OpenRouterAdapter) and router_adapter.compat_fallback
    finally:
        for adapter in local.values():
            await adapter.aclose()


def test_build_adapters_refuses_an_unknown_provider() -> None:
    with pytest.raises(ValueError, match="unknown provider 'anthropic'"):
        build_adapters({"anthropic": "https://api.anthropic.com"}, app_url=None, app_title="rb")


def test_importing_the_registry_does_not_import_httpx() -> None:
    # The console's command parser needs the provider names before its prompt appears.
    code = "import sys, adapters.registry; print('httpx' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
