"""Reading what a provider sends: SSE chunk payloads, ``usage``, exact decimals.

JSON is parsed with ``parse_float=Decimal`` so ``usage.cost`` stays exact. A chunk's text comes
back with the error it carries, text first: it was generated before the error. Only ``content``
is answer text: ``reasoning`` and ``reasoning_details`` deltas are never read, so a model's
reasoning is never shown. ``url_citation`` annotations are kept as the answer's sources.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.base import Citation, Usage
from adapters.errors import MalformedResponseError, ProviderError
from adapters.openai_compat.errors import error_from_payload

__all__ = [
    "ChunkParser",
    "StreamState",
    "as_decimal",
    "loads_exact",
    "parse_citations",
    "parse_usage",
]


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return int(value)
    return 0


def as_decimal(value: object) -> Decimal | None:
    """A JSON number or numeric string as an exact Decimal; ``None`` for anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Only reached for JSON parsed elsewhere without parse_float; str() keeps the
        # shortest repr rather than the binary expansion.
        return Decimal(str(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def parse_usage(raw: object) -> Usage | None:
    """OpenAI/OpenRouter ``usage`` object → :class:`Usage` (``None`` when absent)."""
    if not isinstance(raw, Mapping):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return Usage(
        prompt_tokens=_as_int(raw.get("prompt_tokens")),
        completion_tokens=_as_int(raw.get("completion_tokens")),
        cached_tokens=_as_int(
            prompt_details.get("cached_tokens") if isinstance(prompt_details, Mapping) else None
        ),
        reasoning_tokens=_as_int(
            completion_details.get("reasoning_tokens")
            if isinstance(completion_details, Mapping)
            else None
        ),
        cost=as_decimal(raw.get("cost")),
        web_search_requests=_web_searches(raw),
    )


def _web_searches(raw: Mapping[str, Any]) -> int:
    """``server_tool_use_details.web_search_requests`` (older responses: ``server_tool_use``)."""
    for key in ("server_tool_use_details", "server_tool_use"):
        details = raw.get(key)
        if isinstance(details, Mapping):
            count = _as_int(details.get("web_search_requests"))
            if count > 0:
                return count
    return 0


def parse_citations(raw: object) -> list[Citation]:
    """``url_citation`` annotations: Chat Completions nest ``url_citation: {url, title}``, the
    Responses shape is flat (``{type, url, title}``); anything else is skipped."""
    if not isinstance(raw, list):
        return []
    found: list[Citation] = []
    for item in raw:
        if not isinstance(item, Mapping) or item.get("type") != "url_citation":
            continue
        inner = item.get("url_citation")
        source = inner if isinstance(inner, Mapping) else item
        url, title = source.get("url"), source.get("title")
        if isinstance(url, str) and url:
            found.append(Citation(url, title if isinstance(title, str) and title else None))
    return found


def loads_exact(data: str | bytes) -> Any:
    """``json.loads`` keeping every non-integer number as an exact Decimal."""
    return json.loads(data, parse_float=Decimal)


@dataclass
class StreamState:
    """What one attempt has learned so far; reported in the final event."""

    model_served: str | None = None
    generation_id: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    done: bool = False
    citations: list[Citation] = field(default_factory=list)


class ChunkParser:
    """Turns one SSE ``data`` payload into answer text, recording metadata on the state."""

    def __init__(self, state: StreamState, *, model: str, secret: str) -> None:
        self._state = state
        self._model = model
        self._secret = secret

    def feed(self, data: str) -> tuple[str, ProviderError | None]:
        """Return the chunk's text and the error it carries (text first: it was generated)."""
        if data.strip() == "[DONE]":
            self._state.done = True
            return "", None
        try:
            payload = loads_exact(data)
        except ValueError:
            return "", MalformedResponseError(detail="a stream chunk was not valid JSON")
        if not isinstance(payload, Mapping):
            return "", MalformedResponseError(detail="a stream chunk was not a JSON object")
        return self.feed_object(payload, message_key="delta")

    def feed_object(
        self, payload: Mapping[str, Any], *, message_key: str
    ) -> tuple[str, ProviderError | None]:
        """Shared by stream chunks (``delta``) and whole non-streamed results (``message``)."""
        state = self._state
        if isinstance(payload.get("model"), str) and payload["model"]:
            state.model_served = payload["model"]
        if isinstance(payload.get("id"), str) and payload["id"] and state.generation_id is None:
            state.generation_id = payload["id"]
        usage = parse_usage(payload.get("usage"))
        if usage is not None:
            state.usage = usage

        error: ProviderError | None = None
        if payload.get("error") is not None:
            error = self._error(payload["error"])

        choices = payload.get("choices")
        if choices is None:
            return "", error
        if not isinstance(choices, list):
            return "", error or MalformedResponseError(detail="`choices` was not a list")
        parts: list[str] = []
        for choice in choices:
            if not isinstance(choice, Mapping):
                return "", error or MalformedResponseError(detail="a choice was not an object")
            if choice.get("index", 0) not in (0, None):
                continue  # we only ever ask for one choice
            message = choice.get(message_key)
            if isinstance(message, Mapping):
                content = message.get("content")
                if isinstance(content, str) and content:
                    parts.append(content)
                state.citations.extend(parse_citations(message.get("annotations")))
            finish_reason = choice.get("finish_reason")
            if finish_reason == "error":
                error = error or self._error(choice.get("error"))
            if isinstance(finish_reason, str):
                state.finish_reason = finish_reason
        return "".join(parts), error

    def _error(self, raw: object) -> ProviderError:
        return error_from_payload(raw, model=self._model, secret=self._secret)
