"""OpenRouter: attribution headers, model lookup with per-token → per-1M pricing, keys, stats.

Chat streaming is the OpenAI-compatible one; this module adds OpenRouter's own endpoints:
``GET /model/{author}/{slug}`` (falling back to ``GET /models/{author}/{slug}/endpoints`` on a
404 before calling an id unknown), ``GET /models`` (the catalogue, read by
:mod:`adapters.catalogue`), ``GET /key`` and ``GET /generation?id=``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import stamina
from pydantic import SecretStr

from adapters.base import ChatRequest, GenerationInfo, KeyInfo, ModelInfo, ModelPricing
from adapters.catalogue import CatalogueEntry, ModelCheck, parse_catalogue
from adapters.errors import InvalidModelIdError, MalformedResponseError
from adapters.openai_compat import OpenAICompatibleAdapter, as_decimal
from adapters.openai_compat.parts import has_files

__all__ = [
    "DEFAULT_BASE_URL",
    "MODEL_ID_PATTERN",
    "OpenRouterAdapter",
    "parse_model_id",
    "per_token_to_per_1m",
]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"

#: ``author/slug`` with an optional ``:variant`` (``:free``, ``:nitro``, ``:floor``, …).
MODEL_ID_PATTERN = re.compile(
    r"^(?P<author>[A-Za-z0-9~][A-Za-z0-9._~-]*)"
    r"/(?P<slug>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<variant>[A-Za-z0-9._-]+))?$"
)
#: How MODEL_ID_PATTERN reads to a person.
MODEL_ID_FORMS = ("author/slug", "author/slug:free")

#: ``GET /generation`` can 404 for a moment right after a completion: poll this many times.
GENERATION_LOOKUP_ATTEMPTS = 4
GENERATION_WAIT_INITIAL = 0.5
GENERATION_WAIT_MAX = 2.0

_ONE_MILLION = Decimal(1_000_000)

#: How OpenRouter's file-parser reads a PDF. Documents go only to models whose catalogue entry
#: takes files, so the model reads them itself ("native": billed as the model's input tokens,
#: which the usage reports) rather than through a paid OCR engine the usage would not itemise.
PDF_ENGINE = "native"


def parse_model_id(model_id: str) -> tuple[str, str, str | None] | None:
    """``(author, slug, variant)`` for a well-formed OpenRouter id, else ``None``."""
    match = MODEL_ID_PATTERN.match(model_id.strip())
    if match is None:
        return None
    return match["author"], match["slug"], match["variant"]


def per_token_to_per_1m(value: object) -> Decimal | None:
    """OpenRouter's USD-per-token string (``"0.000003"``) as USD per 1M tokens (``3``).

    Negative prices (``"-1"`` marks variable pricing, e.g. ``openrouter/auto``) are unknown.
    """
    per_token = as_decimal(value)
    if per_token is None or per_token < 0:
        return None
    per_1m = per_token * _ONE_MILLION
    if per_1m == per_1m.to_integral_value():
        return per_1m.quantize(Decimal(1))
    return per_1m.normalize()


def _pricing(raw: object) -> ModelPricing:
    if not isinstance(raw, Mapping):
        return ModelPricing()
    return ModelPricing(
        input_per_1m=per_token_to_per_1m(raw.get("prompt")),
        output_per_1m=per_token_to_per_1m(raw.get("completion")),
        cached_input_per_1m=per_token_to_per_1m(raw.get("input_cache_read")),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cheapest_endpoint(endpoints: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The endpoint with the lowest known input+output price (unknown prices sort last)."""

    def cost(endpoint: Mapping[str, Any]) -> tuple[int, Decimal]:
        pricing = _pricing(endpoint.get("pricing"))
        if pricing.input_per_1m is None or pricing.output_per_1m is None:
            return (1, Decimal(0))
        return (0, pricing.input_per_1m + pricing.output_per_1m)

    return min(endpoints, key=cost) if endpoints else None


class _GenerationNotReady(Exception):
    """``GET /generation`` said 404; the stats may not be written yet."""


class OpenRouterAdapter(OpenAICompatibleAdapter):
    """The default provider. ``compat_fallback`` serves non-OpenRouter base URLs (a local
    llama.cpp, vLLM or Ollama) that lack ``/model``, ``/key`` and ``/generation``: lookups then
    fall back to the OpenAI ``GET /models`` list after a 404."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        app_url: str | None = None,
        app_title: str = "routerbot",
        compat_fallback: bool = False,
        **kwargs: Any,
    ) -> None:
        headers: dict[str, str] = {"X-OpenRouter-Title": app_title, "X-Title": app_title}
        if app_url:
            headers["HTTP-Referer"] = app_url
        headers.update(kwargs.pop("default_headers", None) or {})
        super().__init__("openrouter", base_url, default_headers=headers, **kwargs)
        self.compat_fallback = compat_fallback

    def richer_fields(self, request: ChatRequest) -> dict[str, Any]:
        """OpenRouter's dialect: ``reasoning: {effort}``, the ``openrouter:web_search`` server
        tool, and the ``file-parser`` plugin whenever a document goes with the messages."""
        fields: dict[str, Any] = {}
        if request.reasoning_effort is not None:
            fields["reasoning"] = {"effort": request.reasoning_effort}
        if request.web_search is not None:
            parameters = {
                "max_results": request.web_search.max_results,
                "max_uses": request.web_search.max_uses,
            }
            fields["tools"] = [{"type": "openrouter:web_search", "parameters": parameters}]
        if has_files(request.messages):
            fields["plugins"] = [{"id": "file-parser", "pdf": {"engine": PDF_ENGINE}}]
        return fields

    async def lookup_model(self, model_id: str, api_key: SecretStr | None) -> ModelInfo | None:
        """One model with pricing, or ``None`` when OpenRouter does not know it (a retired
        model, known but with no endpoint left, comes back without prices).

        Raises InvalidModelIdError for an id that is not ``author/slug[:variant]``.
        """
        check = await self.check_model(model_id, api_key)
        if check.status == "no_endpoints":
            return ModelInfo(id=model_id)
        return check.info

    async def list_catalogue(self) -> list[CatalogueEntry]:
        """``GET /models`` without a key: every model served today, with prices, context
        lengths, input kinds and expiry. A plain OpenAI-compatible server lists ids only."""
        return parse_catalogue(await self._get_json("models", None))

    async def check_model(self, model_id: str, api_key: SecretStr | None) -> ModelCheck:
        """What OpenRouter says of one id: ``served`` (with its prices), ``no_endpoints`` (it
        knows the model but nothing serves it: retired), or ``unknown`` (both ``GET /model/…``
        and ``GET /models/…/endpoints`` answer 404).

        Raises InvalidModelIdError for an id that is not ``author/slug[:variant]``.
        """
        parsed = parse_model_id(model_id)
        if parsed is None:
            if not self.compat_fallback:
                raise InvalidModelIdError(model=model_id, provider=self.name, forms=MODEL_ID_FORMS)
            # Local servers name models freely (`llama3.2:3b`); their own list decides.
            return await self._compat_check(model_id, api_key)
        author, slug, variant = parsed
        # The variant stays on the slug: OpenRouter resolves `:free` and friends itself.
        path_slug = f"{slug}:{variant}" if variant else slug
        a, s = quote(author, safe="~"), quote(path_slug, safe=":~")
        payload = await self._get_json(f"model/{a}/{s}", api_key, none_on_404=True)
        if payload is not None:
            data = self._data(payload, "GET /model")
            return ModelCheck(
                "served",
                ModelInfo(
                    id=model_id,
                    name=_str_or_none(data.get("name")),
                    pricing=_pricing(data.get("pricing")),
                    context_length=_int_or_none(data.get("context_length")),
                ),
            )
        payload = await self._get_json(f"models/{a}/{s}/endpoints", api_key, none_on_404=True)
        if payload is not None:
            data = self._data(payload, "GET /models/…/endpoints")
            raw = data.get("endpoints")
            endpoints = [e for e in raw if isinstance(e, Mapping)] if isinstance(raw, list) else []
            best = _cheapest_endpoint(endpoints)
            if best is None:
                return ModelCheck("no_endpoints")
            return ModelCheck(
                "served",
                ModelInfo(
                    id=model_id,
                    name=_str_or_none(data.get("name")),
                    pricing=_pricing(best.get("pricing")),
                    context_length=_int_or_none(data.get("context_length"))
                    or _int_or_none(best.get("context_length")),
                ),
            )
        if self.compat_fallback:
            return await self._compat_check(model_id, api_key)
        return ModelCheck("unknown")

    async def _compat_check(self, model_id: str, api_key: SecretStr | None) -> ModelCheck:
        """An OpenAI-compatible server's own ``GET /models`` list decides."""
        info = await super().lookup_model(model_id, api_key)
        return ModelCheck("served", info) if info is not None else ModelCheck("unknown")

    async def check_key(self, api_key: SecretStr) -> KeyInfo:
        """``GET /key``: label, limit, limit remaining, usage (USD). 401 → AuthenticationError."""
        payload = await self._get_json("key", api_key, none_on_404=self.compat_fallback)
        if payload is None:
            return await super().check_key(api_key)
        data = self._data(payload, "GET /key")
        return KeyInfo(
            label=_str_or_none(data.get("label")),
            limit=as_decimal(data.get("limit")),
            limit_remaining=as_decimal(data.get("limit_remaining")),
            usage=as_decimal(data.get("usage")),
        )

    async def get_generation(self, generation_id: str, api_key: SecretStr) -> GenerationInfo | None:
        """``GET /generation?id=``; a 404 is polled a few times, then ``None``."""
        payload: Any = None
        try:
            async for attempt in stamina.retry_context(
                on=_GenerationNotReady,
                attempts=GENERATION_LOOKUP_ATTEMPTS,
                wait_initial=GENERATION_WAIT_INITIAL,
                wait_max=GENERATION_WAIT_MAX,
            ):
                with attempt:
                    payload = await self._get_json(
                        "generation", api_key, params={"id": generation_id}, none_on_404=True
                    )
                    if payload is None:
                        raise _GenerationNotReady
        except _GenerationNotReady:
            return None
        data = self._data(payload, "GET /generation")
        return GenerationInfo(
            id=_str_or_none(data.get("id")) or generation_id,
            total_cost=as_decimal(data.get("total_cost")),
            model=_str_or_none(data.get("model")),
            provider_name=_str_or_none(data.get("provider_name")),
            tokens_prompt=_int_or_none(data.get("tokens_prompt")),
            tokens_completion=_int_or_none(data.get("tokens_completion")),
            native_tokens_prompt=_int_or_none(data.get("native_tokens_prompt")),
            native_tokens_completion=_int_or_none(data.get("native_tokens_completion")),
            native_tokens_cached=_int_or_none(data.get("native_tokens_cached")),
        )

    @staticmethod
    def _data(payload: object, what: str) -> Mapping[str, Any]:
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, Mapping):
            raise MalformedResponseError(detail=f"{what}: no `data` object")
        return data
