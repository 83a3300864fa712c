"""Builds the configured provider adapters and says which provider serves a model id."""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.base import ProviderAdapter
from adapters.fireworks import FireworksAdapter
from adapters.openrouter import OpenRouterAdapter

__all__ = ["build_adapters", "provider_for_key", "provider_for_model"]

_OPENROUTER_HOST = "openrouter.ai"


def build_adapters(
    openrouter_base_url: str,
    fireworks_base_url: str,
    *,
    app_url: str | None,
    app_title: str,
) -> dict[str, ProviderAdapter]:
    """One adapter (one pooled client) per provider, keyed by provider name.

    An ``OPENROUTER_BASE_URL`` that is not OpenRouter (a local llama.cpp, vLLM or Ollama)
    gets ``compat_fallback`` so model and key checks use the OpenAI ``/models`` list there.
    """
    host = (urlsplit(openrouter_base_url).hostname or "").lower()
    is_openrouter = host == _OPENROUTER_HOST or host.endswith("." + _OPENROUTER_HOST)
    return {
        "openrouter": OpenRouterAdapter(
            openrouter_base_url,
            app_url=app_url,
            app_title=app_title,
            compat_fallback=not is_openrouter,
        ),
        "fireworks": FireworksAdapter(fireworks_base_url),
    }


def provider_for_model(model_id: str) -> str:
    """``fireworks`` for ``accounts/...`` ids, otherwise ``openrouter``."""
    return "fireworks" if model_id.startswith("accounts/") else "openrouter"


def provider_for_key(key: str) -> str:
    """``fireworks`` for ``fw_…`` keys, otherwise ``openrouter``."""
    return "fireworks" if key.startswith("fw_") else "openrouter"
