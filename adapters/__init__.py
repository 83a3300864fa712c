"""Provider adapters: talk to OpenAI-compatible LLM APIs over one pooled httpx client each."""

from adapters.base import (
    ChatMessage,
    ChatRequest,
    GenerationInfo,
    KeyInfo,
    ModelInfo,
    ModelPricing,
    ProviderAdapter,
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
    "StreamEvent",
    "StreamFailed",
    "StreamFinished",
    "TextDelta",
    "Usage",
    "build_adapters",
    "provider_for_model",
]
