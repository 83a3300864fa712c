"""Facts a provider error carries beyond its kind, read from OpenRouter's error bodies.

OpenRouter answers different refusals with one status: 403 for moderation, for a guardrail
(allowed models or providers, a content rule) and for a spent key limit or budget
(``error.metadata.limit_source``); 404 ``No endpoints found for <id>.`` for a model its vendor
retired; 400 for a prompt over the model's context length. The core tells them apart through
these functions, so the user hears what they (or an admin) can do. They read
``error.metadata`` where OpenRouter sends it, else the documented message, and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from adapters.errors import (
    BadRequestError,
    ModelNotFoundError,
    ModerationError,
    ProviderError,
)

__all__ = [
    "ForbiddenReason",
    "context_limit",
    "error_metadata",
    "forbidden_reason",
    "is_context_overflow",
    "is_retired_model",
    "unsupported_feature",
]

ForbiddenReason = Literal["moderation", "guardrail", "key_limit", "budget_limit"]

#: Metadata values kept on an error: scalars and lists of strings. ``flagged_input`` (the
#: user's own text) and ``raw`` (an upstream body) are dropped: nothing needs them.
_DROPPED_KEYS = frozenset({"flagged_input", "raw"})
_MAX_VALUE_CHARS = 200

_NO_ENDPOINTS = re.compile(r"^No endpoints found for \S+?\.?$")
_NO_SUPPORT = re.compile(r"^No endpoints found that support (?P<what>[\w\s-]{1,40}?)\.?$")
_CONTEXT_LIMIT = re.compile(r"maximum context length is ([\d,]+) tokens", re.IGNORECASE)
_CONTEXT_CODES = frozenset(
    {"context_length_exceeded", "max_tokens_exceeded", "token_limit_exceeded", "string_too_long"}
)


def error_metadata(raw: object) -> dict[str, object]:
    """The facts worth keeping from ``error.metadata``: short scalars and string lists."""
    if not isinstance(raw, Mapping):
        return {}
    kept: dict[str, object] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or key in _DROPPED_KEYS:
            continue
        if isinstance(value, str):
            kept[key] = value[:_MAX_VALUE_CHARS]
        elif value is None or isinstance(value, bool | int | float):
            kept[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            kept[key] = [v[:_MAX_VALUE_CHARS] for v in value[:10]]
    return kept


def forbidden_reason(error: ProviderError) -> ForbiddenReason | None:
    """Why a 403 refused the request; ``None`` for other errors.

    ``limit_source`` names the limit that is spent (``openrouter_key_limit``, or a guardrail's
    or workspace's budget); ``reasons`` come with a moderation flag; a guardrail names itself.
    A 403 that says none of these is taken for moderation, OpenRouter's oldest 403.
    """
    if not isinstance(error, ModerationError):
        return None
    meta = error.metadata
    source = meta.get("limit_source")
    if isinstance(source, str):
        return "key_limit" if source.endswith("key_limit") else "budget_limit"
    if "reasons" in meta:
        return "moderation"
    words = " ".join(
        [*(str(k) for k in meta), str(meta.get("error_type") or ""), error.detail or ""]
    ).lower()
    if "guardrail" in words:
        return "guardrail"
    if "key limit" in words or "limit exceeded" in words:
        return "key_limit"
    return "moderation"


def is_retired_model(error: ProviderError) -> bool:
    """OpenRouter's 404 for a model nobody serves any more: ``No endpoints found for <id>.``

    Other "No endpoints found …" messages (matching your data policy, supporting a
    parameter) are about the request, not the model, and do not count.
    """
    return isinstance(error, ModelNotFoundError) and bool(
        error.detail and _NO_ENDPOINTS.match(error.detail.strip())
    )


def unsupported_feature(error: ProviderError) -> str | None:
    """What no endpoint of the model supports, for OpenRouter's 404 ``No endpoints found that
    support image input`` (``"image input"``, ``"tool use"``…); None for any other error."""
    if not isinstance(error, ModelNotFoundError) or not error.detail:
        return None
    match = _NO_SUPPORT.match(error.detail.strip())
    return match["what"].strip() if match else None


def is_context_overflow(error: ProviderError) -> bool:
    """A 400 because the prompt is longer than the model's context."""
    if not isinstance(error, BadRequestError):
        return False
    code = (error.provider_code or "").lower()
    error_type = str(error.metadata.get("error_type") or "").lower()
    if code in _CONTEXT_CODES or error_type in _CONTEXT_CODES:
        return True
    return bool(error.detail and _CONTEXT_LIMIT.search(error.detail))


def context_limit(error: ProviderError) -> int | None:
    """The context length a context-overflow message states, if it states one."""
    match = _CONTEXT_LIMIT.search(error.detail or "")
    return int(match.group(1).replace(",", "")) if match else None
