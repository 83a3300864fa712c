"""Provider adapters: talk to OpenAI-compatible LLM APIs over one pooled httpx client each.

The public names are re-exported lazily: importing ``adapters.base`` for its types (as the
console does before its prompt appears) must not pull in httpx and the streaming machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.base import (
        ChatMessage,
        ChatRequest,
        GenerationInfo,
        KeyInfo,
        ModelInfo,
        ModelPricing,
        ProviderAdapter,
        StreamAccepted,
        StreamEvent,
        StreamFailed,
        StreamFinished,
        TextDelta,
        Usage,
    )
    from adapters.fireworks import FireworksAdapter
    from adapters.openai_compat import OpenAICompatibleAdapter
    from adapters.openrouter import OpenRouterAdapter
    from adapters.registry import build_adapters, provider_for_model

_HOMES = {
    **dict.fromkeys(
        (
            "ChatMessage",
            "ChatRequest",
            "GenerationInfo",
            "KeyInfo",
            "ModelInfo",
            "ModelPricing",
            "ProviderAdapter",
            "StreamAccepted",
            "StreamEvent",
            "StreamFailed",
            "StreamFinished",
            "TextDelta",
            "Usage",
        ),
        "adapters.base",
    ),
    "FireworksAdapter": "adapters.fireworks",
    "OpenAICompatibleAdapter": "adapters.openai_compat",
    "OpenRouterAdapter": "adapters.openrouter",
    "build_adapters": "adapters.registry",
    "provider_for_model": "adapters.registry",
}

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "FireworksAdapter",
    "GenerationInfo",
    "KeyInfo",
    "ModelInfo",
    "ModelPricing",
    "OpenAICompatibleAdapter",
    "OpenRouterAdapter",
    "ProviderAdapter",
    "StreamAccepted",
    "StreamEvent",
    "StreamFailed",
    "StreamFinished",
    "TextDelta",
    "Usage",
    "build_adapters",
    "provider_for_model",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'adapters' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
