"""Fireworks: the OpenAI-compatible adapter with Fireworks' base URL and request dialect.

Fireworks reports token usage (in the chunk that carries ``finish_reason``) but no cost, so the
core computes cost from the pricing table. Model ids look like ``accounts/fireworks/models/<slug>``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.openai_compat import OpenAICompatibleAdapter

__all__ = ["DEFAULT_BASE_URL", "FireworksAdapter", "is_fireworks_model_id"]

DEFAULT_BASE_URL = "https://api.fireworks.ai/inference/v1"


def is_fireworks_model_id(model_id: str) -> bool:
    """``accounts/<account>/models/<slug>`` (or ``…/deployments/<id>`` for dedicated ones)."""
    parts = model_id.split("/")
    return len(parts) == 4 and parts[0] == "accounts" and parts[2] in ("models", "deployments")


class FireworksAdapter(OpenAICompatibleAdapter):
    # Fireworks documents ``max_tokens`` (default 200 when omitted), not max_completion_tokens.
    max_tokens_field: ClassVar[str] = "max_tokens"
    # Fireworks' own default (200 tokens) cuts chat answers short.
    default_max_tokens: ClassVar[int | None] = 4096

    def __init__(self, base_url: str = DEFAULT_BASE_URL, **kwargs: Any) -> None:
        super().__init__("fireworks", base_url, **kwargs)
