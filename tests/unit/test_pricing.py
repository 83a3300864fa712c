"""Cost arithmetic (SPEC §4) and the model settings file."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import ModelPricing, Usage
from bot.core.pricing import (
    ModelSettings,
    ModelSettingsError,
    compute_cost,
    settle_cost,
    usd_to_nano,
)

# The file tests below were written against the 2024 recommendations, pinned in tests/fixtures;
# the shipped defaultModelSettings.json is checked in test_recommendations.py.
from tests.fixtures import PINNED_MODEL_SETTINGS as DEFAULT_MODEL_SETTINGS

SONNET = ModelPricing(Decimal(3), Decimal(15), Decimal("0.3"))


def test_computed_cost_counts_cached_tokens_at_the_cached_price() -> None:
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=100_000)
    # 600k × $3/M + 400k × $0.3/M + 100k × $15/M = 1.8 + 0.12 + 1.5
    assert compute_cost(usage, SONNET) == Decimal("3.42")


def test_reasoning_tokens_are_inside_completion_tokens() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=100, reasoning_tokens=80)
    assert compute_cost(usage, SONNET) == Decimal("0.00153")


def test_missing_cached_price_charges_input_price() -> None:
    pricing = ModelPricing(Decimal(1), Decimal(2))
    usage = Usage(prompt_tokens=100, cached_tokens=50, completion_tokens=0)
    assert compute_cost(usage, pricing) == Decimal("0.0001")


def test_reported_cost_wins_then_computed_then_unknown() -> None:
    reported = settle_cost(Usage(prompt_tokens=5, completion_tokens=5, cost=Decimal("0.5")), SONNET)
    assert (reported.usd, reported.source) == (Decimal("0.5"), "reported")
    computed = settle_cost(Usage(prompt_tokens=1000, completion_tokens=0), SONNET)
    assert (computed.usd, computed.source) == (Decimal("0.003"), "computed")
    assert settle_cost(Usage(prompt_tokens=1), None).source == "unknown"
    assert settle_cost(None, SONNET).source == "unknown"


@given(
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.integers(0, 10**6),
    st.decimals(0, 100, places=3),
    st.decimals(0, 100, places=3),
)
def test_cost_is_exact_and_nano_rounding_is_bounded(
    prompt: int, cached: int, completion: int, price_in: Decimal, price_out: Decimal
) -> None:
    pricing = ModelPricing(price_in, price_out, price_in / 10)
    usage = Usage(
        prompt_tokens=prompt, cached_tokens=min(cached, prompt), completion_tokens=completion
    )
    cost = compute_cost(usage, pricing)
    assert cost is not None and cost >= 0
    nano = usd_to_nano(cost)
    assert abs(Decimal(nano) / Decimal(10**9) - cost) <= Decimal("0.0000000005")


def test_repository_settings_file_is_valid() -> None:
    settings = ModelSettings.load(DEFAULT_MODEL_SETTINGS)
    ids = [m.model_id for m in settings.recommended("openrouter")]
    assert "anthropic/claude-3.5-sonnet" in ids
    assert settings.recommended("fireworks")


def test_broken_settings_file_names_the_field(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_MODEL_SETTINGS.read_text())
    data["pricing"]["openrouter"]["openai/gpt-4o-mini"]["inputCostPer1M"] = "cheap"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelSettingsError) as info:
        ModelSettings.load(path)
    assert "pricing.openrouter.openai/gpt-4o-mini.inputCostPer1M" in str(info.value)


def test_unparseable_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(ModelSettingsError, match="not valid JSON"):
        ModelSettings.load(path)
