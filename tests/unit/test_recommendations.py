"""The shipped defaultModelSettings.json: current, well-formed, varied recommendations."""

from decimal import Decimal

from adapters.openrouter import parse_model_id, per_token_to_per_1m
from bot.config import DEFAULT_MODEL_SETTINGS
from bot.core.pricing import ModelSettings
from tests.fakes.openrouter_catalogue import LATE_2026_MODELS, RETIRED_IN_2026

RECOMMENDED = ModelSettings.load(DEFAULT_MODEL_SETTINGS).recommended("openrouter")


def test_recommends_no_model_its_vendor_retired() -> None:
    ids = {m.model_id for m in RECOMMENDED}
    assert not ids & {m.id for m in RETIRED_IN_2026}
    assert all(parse_model_id(model_id) is not None for model_id in ids)


def test_a_strong_default_a_cheap_one_and_a_spread_of_vendors() -> None:
    first = RECOMMENDED[0]
    # The default follows Anthropic's newest Sonnet, so it cannot be retired under a workspace.
    assert first.model_id == "~anthropic/claude-sonnet-latest"
    cheap = [m for m in RECOMMENDED if (m.pricing.input_per_1m or 0) <= Decimal("0.25")]
    assert len(cheap) >= 2
    vendors = {m.model_id.lstrip("~").split("/")[0] for m in RECOMMENDED}
    assert len(vendors) >= 4


def test_the_fake_catalogue_serves_them_at_these_prices() -> None:
    served = {m.id: m for m in LATE_2026_MODELS}
    for model in RECOMMENDED:
        entry = served[model.model_id]
        assert per_token_to_per_1m(entry.prompt) == model.pricing.input_per_1m, model.model_id
        assert per_token_to_per_1m(entry.completion) == model.pricing.output_per_1m
