"""The provider's model catalogue as plain records, and what a lookup says about one id.

OpenRouter's ``GET /models`` (no key needed) lists what it serves today. :func:`parse_catalogue`
reads it into frozen :class:`CatalogueEntry` values: prices per 1M tokens (``pricing.prompt``,
``completion``, ``input_cache_read`` are USD per token) and per web search, context length,
input kinds, supported parameters, the ``expiration_date`` after which OpenRouter may remove
the model, ``created``, and for ``~author/family-latest`` rows the model the alias routes to.
A plain OpenAI-compatible server (llama.cpp, vLLM, Ollama) lists ids only; its entries carry
just those.

:class:`ModelCheck` is the answer to "does the provider serve this id?" for ``/models add``:
``served``; ``no_endpoints`` (OpenRouter knows the model but no provider serves it any more:
retired); or ``unknown`` (no such id). :func:`check_model` asks any adapter, using its
``check_model`` where it has one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import SecretStr

from adapters.base import ModelInfo, ModelPricing, ProviderAdapter
from adapters.errors import MalformedResponseError

__all__ = [
    "CatalogueEntry",
    "CataloguePricing",
    "CatalogueReader",
    "ModelCheck",
    "ModelChecker",
    "check_model",
    "parse_catalogue",
    "parse_entry",
    "per_token_to_per_1m",
]

_ONE_MILLION = Decimal(1_000_000)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int | str | float):
        try:
            result = Decimal(str(value).strip())
        except ArithmeticError:
            return None
        return result if result.is_finite() else None
    return None


def per_token_to_per_1m(value: object) -> Decimal | None:
    """USD per token (``"0.000003"``) as USD per 1M tokens (``3``); negative ("variable
    pricing", e.g. ``openrouter/auto``) or missing prices are unknown."""
    per_token = _decimal(value)
    if per_token is None or per_token < 0:
        return None
    per_1m = per_token * _ONE_MILLION
    if per_1m == per_1m.to_integral_value():
        return per_1m.quantize(Decimal(1))
    return per_1m.normalize()


@dataclass(frozen=True, slots=True)
class CataloguePricing:
    """USD per 1M tokens, and USD per web search request; ``None`` where not listed."""

    input_per_1m: Decimal | None = None
    output_per_1m: Decimal | None = None
    cached_input_per_1m: Decimal | None = None
    web_search_per_request: Decimal | None = None

    def as_model_pricing(self) -> ModelPricing:
        return ModelPricing(self.input_per_1m, self.output_per_1m, self.cached_input_per_1m)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One model the provider lists."""

    id: str
    name: str | None = None
    canonical_slug: str | None = None
    pricing: CataloguePricing = field(default_factory=CataloguePricing)
    context_length: int | None = None
    #: ``text``, ``image``, ``file``, ``audio`` (OpenRouter's ``architecture.input_modalities``).
    input_modalities: tuple[str, ...] = ()
    supported_parameters: tuple[str, ...] = ()
    #: After this date OpenRouter may remove the model.
    expiration_date: date | None = None
    #: When the model was added to the provider (UTC).
    created: datetime | None = None
    #: For ``~author/family-latest`` aliases: the concrete model they route to today.
    alias_target: str | None = None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _date(value: object) -> date | None:
    if not isinstance(value, str) or not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _created(value: object) -> datetime | None:
    seconds = _int(value)
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _pricing(raw: object) -> CataloguePricing:
    if not isinstance(raw, Mapping):
        return CataloguePricing()
    web_search = _decimal(raw.get("web_search"))
    return CataloguePricing(
        input_per_1m=per_token_to_per_1m(raw.get("prompt")),
        output_per_1m=per_token_to_per_1m(raw.get("completion")),
        cached_input_per_1m=per_token_to_per_1m(raw.get("input_cache_read")),
        web_search_per_request=web_search if web_search is not None and web_search >= 0 else None,
    )


def parse_entry(raw: Mapping[str, Any]) -> CatalogueEntry | None:
    """One ``Model`` object; ``None`` when it has no usable id."""
    model_id = _str(raw.get("id"))
    if model_id is None:
        return None
    architecture = raw.get("architecture")
    modalities = (
        _strings(architecture.get("input_modalities")) if isinstance(architecture, Mapping) else ()
    )
    target = raw.get("alias_target")
    return CatalogueEntry(
        id=model_id,
        name=_str(raw.get("name")),
        canonical_slug=_str(raw.get("canonical_slug")),
        pricing=_pricing(raw.get("pricing")),
        context_length=_int(raw.get("context_length")),
        input_modalities=modalities,
        supported_parameters=_strings(raw.get("supported_parameters")),
        expiration_date=_date(raw.get("expiration_date")),
        created=_created(raw.get("created")),
        alias_target=_str(target.get("slug")) if isinstance(target, Mapping) else None,
    )


def parse_catalogue(payload: object) -> list[CatalogueEntry]:
    """``{"data": [Model, …]}`` → entries, in the provider's order; the first of a repeated
    id wins. Raises MalformedResponseError when there is no ``data`` list."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, list):
        raise MalformedResponseError(detail="GET /models: no `data` list")
    entries: dict[str, CatalogueEntry] = {}
    for item in data:
        entry = parse_entry(item) if isinstance(item, Mapping) else None
        if entry is not None:
            entries.setdefault(entry.id, entry)
    return list(entries.values())


@dataclass(frozen=True, slots=True)
class ModelCheck:
    """What the provider says about one model id.

    ``no_endpoints``: the provider knows the model (its page is there) but nothing serves it
    any more, which is how a retired model looks. ``info`` is set when the model is served.
    """

    status: Literal["served", "no_endpoints", "unknown"]
    info: ModelInfo | None = None


@runtime_checkable
class CatalogueReader(Protocol):
    """An adapter that can list its provider's catalogue (OpenRouter, OpenAI-compatible)."""

    async def list_catalogue(self) -> Sequence[CatalogueEntry]: ...


@runtime_checkable
class ModelChecker(Protocol):
    """An adapter that can tell a retired model from an unknown id."""

    async def check_model(self, model_id: str, api_key: SecretStr | None) -> ModelCheck: ...


async def check_model(
    adapter: ProviderAdapter, model_id: str, api_key: SecretStr | None
) -> ModelCheck:
    """Ask ``adapter`` about ``model_id``: its own ``check_model`` where it has one, else
    its ``lookup_model`` (which cannot tell retired from unknown)."""
    if isinstance(adapter, ModelChecker):
        return await adapter.check_model(model_id, api_key)
    info = await adapter.lookup_model(model_id, api_key)
    return ModelCheck("served", info) if info is not None else ModelCheck("unknown")
