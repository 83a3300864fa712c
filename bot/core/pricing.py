"""Recommended models and their prices (defaultModelSettings.json), and exact cost arithmetic.

Prices are USD per 1M tokens as :class:`~decimal.Decimal`; the database keeps nano-USD integers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import ModelPricing, Usage
from bot.core.commands import validate_model_id
from bot.core.errors import UsageError
from bot.core.text import decode_utf8

NANO = Decimal(1_000_000_000)
MILLION = Decimal(1_000_000)

#: ``reconciled``: the provider's own record (GET /generation); ``estimated``: a chat cut
#: short that the provider kept no record of, estimated from what was streamed.
CostSource = Literal["reported", "computed", "unknown", "none", "reconciled", "estimated"]


class PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    input_cost_per_1m: Decimal = Field(alias="inputCostPer1M", ge=0)
    output_cost_per_1m: Decimal = Field(alias="outputCostPer1M", ge=0)
    cached_input_cost_per_1m: Decimal | None = Field(
        default=None, alias="cachedInputCostPer1M", ge=0
    )

    def as_pricing(self) -> ModelPricing:
        return ModelPricing(
            input_per_1m=self.input_cost_per_1m,
            output_per_1m=self.output_cost_per_1m,
            cached_input_per_1m=self.cached_input_cost_per_1m,
        )


class ModelDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_completion_tokens: int | None = Field(default=None, alias="maxCompletionTokens", gt=0)


class ModelSettingsFile(BaseModel):
    """The schema of defaultModelSettings.json (SPEC §4)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    version: Literal[1]
    pricing: dict[str, dict[str, PriceEntry]]
    model_defaults: dict[str, dict[str, ModelDefaults]] = Field(
        default_factory=dict, alias="modelDefaults"
    )

    def unnameable_model_id(self) -> str | None:
        """The first model id no command could name (the grammar's own rule), as ``field
        <where>: <why>``; a recommended model users cannot type is a broken file."""
        sections = (("pricing", self.pricing), ("modelDefaults", self.model_defaults))
        for section, table in sections:
            for provider, models in table.items():
                for model_id in models:
                    try:
                        validate_model_id(model_id)
                    except UsageError as exc:
                        return f"field {section}.{provider}.{model_id}: {exc.message}"
        return None


class ModelSettingsError(Exception):
    """The model settings file is missing or invalid; the message names the field."""


@dataclass(frozen=True, slots=True)
class RecommendedModel:
    provider: str
    model_id: str
    pricing: ModelPricing


class ModelSettings:
    """Validated recommended models, prices and per-model request defaults."""

    def __init__(self, data: ModelSettingsFile) -> None:
        self._data = data

    @classmethod
    def load(cls, path: Path) -> ModelSettings:
        try:
            raw = decode_utf8(path.read_bytes(), str(path))
        except OSError as exc:
            raise ModelSettingsError(f"{path}: cannot read the file ({exc.strerror}).") from None
        except ValueError as exc:
            raise ModelSettingsError(str(exc)) from None
        try:
            parsed = json.loads(raw, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise ModelSettingsError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
            ) from None
        try:
            data = ModelSettingsFile.model_validate(parsed)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(top level)"
            more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
            raise ModelSettingsError(f"{path}: field {where}: {first['msg']}{more}.") from None
        problem = data.unnameable_model_id()
        if problem is not None:
            raise ModelSettingsError(f"{path}: {problem}")
        return cls(data)

    def recommended(self, provider: str | None = None) -> list[RecommendedModel]:
        out: list[RecommendedModel] = []
        for prov, models in self._data.pricing.items():
            if provider is not None and prov != provider:
                continue
            out.extend(
                RecommendedModel(prov, model_id, entry.as_pricing())
                for model_id, entry in models.items()
            )
        return out

    def price(self, provider: str, model_id: str) -> ModelPricing | None:
        entry = self._data.pricing.get(provider, {}).get(model_id)
        return entry.as_pricing() if entry else None

    def defaults(self, provider: str, model_id: str) -> ModelDefaults:
        return self._data.model_defaults.get(provider, {}).get(model_id) or ModelDefaults()


def compute_cost(usage: Usage, pricing: ModelPricing | None) -> Decimal | None:
    """Cost in USD from token counts: (prompt − cached) × input + cached × cached-input +
    completion × output. ``None`` when a needed price is unknown.

    Reasoning tokens are already inside ``completion_tokens``; cached tokens inside
    ``prompt_tokens`` (OpenRouter's convention). Without a cached price, cached tokens are
    charged at the input price. Web searches add their price per search; searches at no known
    price leave the cost unknown.
    """
    if pricing is None or pricing.input_per_1m is None or pricing.output_per_1m is None:
        return None
    searches = search_cost(usage, pricing)
    if searches is None:
        return None
    cached = min(max(usage.cached_tokens, 0), max(usage.prompt_tokens, 0))
    uncached = max(usage.prompt_tokens, 0) - cached
    cached_price = (
        pricing.cached_input_per_1m
        if pricing.cached_input_per_1m is not None
        else pricing.input_per_1m
    )
    total = (
        uncached * pricing.input_per_1m
        + cached * cached_price
        + max(usage.completion_tokens, 0) * pricing.output_per_1m
    )
    return total / MILLION + searches


def search_cost(usage: Usage | None, pricing: ModelPricing | None) -> Decimal | None:
    """What the chat's web searches cost: 0 without searches, None at no known price."""
    if usage is None or usage.web_search_requests <= 0:
        return Decimal(0)
    price = pricing.web_search_per_request if pricing is not None else None
    return None if price is None else usage.web_search_requests * price


def usd_to_nano(amount: Decimal) -> int:
    """Exact USD → nano-USD integer (banker's rounding below one nano-dollar)."""
    return int((amount * NANO).to_integral_value(rounding=ROUND_HALF_EVEN))


def nano_to_usd(nano: int) -> Decimal:
    return Decimal(nano) / NANO


def price_to_nano(per_1m: Decimal | None) -> int | None:
    return None if per_1m is None else usd_to_nano(per_1m)


def nano_to_price(nano: int | None) -> Decimal | None:
    return None if nano is None else nano_to_usd(nano)


@dataclass(frozen=True, slots=True)
class ChatCost:
    usd: Decimal | None
    source: CostSource
    #: The part of ``usd`` that paid for web searches, where known.
    search_usd: Decimal | None = None

    @property
    def nano(self) -> int | None:
        return None if self.usd is None else usd_to_nano(self.usd)

    @property
    def search_nano(self) -> int | None:
        return None if self.search_usd is None else usd_to_nano(self.search_usd)


def settle_cost(usage: Usage | None, pricing: ModelPricing | None) -> ChatCost:
    """The provider's reported cost where there is one, else computed, else unknown."""
    if usage is None:
        return ChatCost(None, "unknown")
    searches = search_cost(usage, pricing) if usage.web_search_requests else None
    if usage.cost is not None:
        return ChatCost(usage.cost, "reported", searches)
    computed = compute_cost(usage, pricing)
    if computed is None:
        return ChatCost(None, "unknown", searches)
    return ChatCost(computed, "computed", searches)
