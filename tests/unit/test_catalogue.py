"""bot.core.catalogue with an injected fetch and clock: one fetch per refresh however many
callers, back-off after failures, staleness, availability, search, and the sync's diff."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.base import ModelPricing
from adapters.catalogue import CatalogueEntry, CataloguePricing
from bot.core.catalogue import Allowlisted, Catalogue, ModelChange, changes_for, stop_refresher

T0 = datetime(2026, 11, 20, 9, 0)


def entry(
    model_id: str, price_in: str = "1", price_out: str = "2", **extra: object
) -> CatalogueEntry:
    return CatalogueEntry(
        id=model_id,
        name=extra.pop("name", model_id.split("/")[-1].title()),  # type: ignore[arg-type]
        pricing=CataloguePricing(Decimal(price_in), Decimal(price_out)),
        **extra,  # type: ignore[arg-type]
    )


class Provider:
    """A fetch that counts its calls and can fail or be held."""

    def __init__(self, entries: Sequence[CatalogueEntry]) -> None:
        self.entries = list(entries)
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> Sequence[CatalogueEntry]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("provider down")
        return list(self.entries)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


MODELS = [
    entry("openai/gpt-5-mini", "0.25", "2", name="OpenAI: GPT-5 Mini"),
    entry("openai/gpt-5", "1.25", "10", name="OpenAI: GPT-5"),
    entry("deepseek/deepseek-v4-flash", "0.14", "0.28", name="DeepSeek: DeepSeek V4 Flash"),
    entry("meta-llama/llama-3.3-70b-instruct:free", "0", "0", name="Meta: Llama 3.3 70B (free)"),
    entry("google/gemini-2.5-flash", "0.3", "2.5", expiration_date=date(2026, 10, 22)),
]


@pytest.fixture
def provider() -> Provider:
    return Provider(MODELS)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalogue(provider: Provider, clock: Clock) -> Catalogue:
    return Catalogue(provider, clock=clock)


async def test_many_callers_share_one_fetch(provider: Provider, catalogue: Catalogue) -> None:
    provider.gate = asyncio.Event()
    waiting = [asyncio.create_task(catalogue.ensure()) for _ in range(50)]
    await asyncio.sleep(0)  # every caller is waiting on the one fetch
    provider.gate.set()
    snapshots = await asyncio.gather(*waiting)
    assert provider.calls == 1
    assert all(s is snapshots[0] and s is not None for s in snapshots)
    assert await catalogue.ensure() is snapshots[0] and provider.calls == 1


async def test_a_caller_giving_up_does_not_cancel_the_fetch(
    provider: Provider, catalogue: Catalogue
) -> None:
    provider.gate = asyncio.Event()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await catalogue.ensure()
    provider.gate.set()
    assert await catalogue.ensure() is not None
    assert provider.calls == 1


async def test_failures_back_off_and_stale_snapshots_are_refetched(
    provider: Provider, catalogue: Catalogue, clock: Clock
) -> None:
    provider.fail = True
    assert await catalogue.ensure() is None
    assert await catalogue.ensure() is None
    assert provider.calls == 1  # not again within the back-off
    clock.now += timedelta(minutes=6)
    provider.fail = False
    first = await catalogue.ensure()
    assert first is not None and provider.calls == 2 and not catalogue.stale
    clock.now += timedelta(hours=25)
    assert catalogue.stale
    provider.fail = True
    assert await catalogue.ensure() is first  # the old one stays when a refresh fails
    provider.fail = False
    clock.now += timedelta(minutes=6)
    second = await catalogue.ensure()
    assert second is not None and second is not first and provider.calls == 4


async def test_status_of_served_gone_expired_variants_and_aliases(
    provider: Provider, catalogue: Catalogue
) -> None:
    assert catalogue.status("openai/gpt-5-mini").availability == "unknown"  # nothing cached
    await catalogue.refresh()
    assert catalogue.status("openai/gpt-5-mini").availability == "served"
    assert catalogue.status("openai/gpt-5-mini:nitro").availability == "served"
    assert catalogue.status("openai/gpt-5-mini:floor").entry == MODELS[0]
    assert catalogue.status("openai/gpt-5-mini:free").availability == "gone"
    assert catalogue.status("meta-llama/llama-3.3-70b-instruct:free").availability == "served"
    assert catalogue.status("anthropic/claude-3.5-sonnet").availability == "gone"
    assert catalogue.status("~anthropic/claude-sonnet-latest").availability == "unknown"
    assert catalogue.status("google/gemini-2.5-flash").availability == "expired"
    assert catalogue.status("google/gemini-2.5-flash", today=date(2026, 10, 1)).availability == (
        "served"
    )
    # A chat refused with "No endpoints found" counts until a fresh list shows the model.
    catalogue.mark_refused("openai/gpt-5")
    assert catalogue.status("openai/gpt-5").availability == "gone"
    await catalogue.refresh()
    assert catalogue.status("openai/gpt-5").availability == "served"
    # A model that leaves the list is remembered as gone by this process.
    provider.entries = provider.entries[1:]
    await catalogue.refresh()
    assert catalogue.known_gone("openai/gpt-5-mini:nitro")
    catalogue.mark_served("openai/gpt-5-mini")
    assert not catalogue.known_gone("openai/gpt-5-mini")


async def test_search_matches_every_word_in_id_or_name(catalogue: Catalogue) -> None:
    await catalogue.refresh()
    assert [e.id for e in catalogue.search(["GPT-5"])] == ["openai/gpt-5", "openai/gpt-5-mini"]
    assert [e.id for e in catalogue.search(["deepseek", "flash"])] == ["deepseek/deepseek-v4-flash"]
    assert [e.id for e in catalogue.search(["llama", "free"])] == [
        "meta-llama/llama-3.3-70b-instruct:free"
    ]
    assert catalogue.search(["nothing", "like", "this"]) == []
    assert len(catalogue.search(["o"], limit=3)) == 3


async def test_changes_for_the_sync(provider: Provider, catalogue: Catalogue) -> None:
    stored = ModelPricing(Decimal("0.25"), Decimal("2"), Decimal("0.025"))
    mini = Allowlisted("openai/gpt-5-mini", stored)
    assert changes_for(mini, catalogue) == []  # no snapshot, no judgement
    snapshot = await catalogue.refresh()
    assert snapshot is not None
    assert changes_for(mini, catalogue) == []
    provider.entries[0] = entry("openai/gpt-5-mini", "0.3", "2.4", name="OpenAI: GPT-5 Mini")
    await catalogue.refresh()
    [change] = changes_for(mini, catalogue)
    # The catalogue states no cached price: the stored one stays.
    assert change == ModelChange(
        "openai/gpt-5-mini",
        "price",
        stored,
        ModelPricing(Decimal("0.3"), Decimal("2.4"), Decimal("0.025")),
    )
    sonnet = Allowlisted("anthropic/claude-3.5-sonnet", stored)
    assert changes_for(sonnet, catalogue) == [
        ModelChange("anthropic/claude-3.5-sonnet", "unavailable", reason="gone")
    ]
    already = Allowlisted("anthropic/claude-3.5-sonnet", stored, unavailable="gone")
    assert changes_for(already, catalogue) == []
    # Confirmed by the provider after this snapshot was fetched: the snapshot cannot tell.
    later = Allowlisted("new/model", stored, confirmed_at=T0 + timedelta(minutes=1))
    assert changes_for(later, catalogue) == []
    expired = Allowlisted("google/gemini-2.5-flash", ModelPricing(Decimal("0.3"), Decimal("2.5")))
    assert changes_for(expired, catalogue)[0].reason == "expired"
    back = Allowlisted("openai/gpt-5", ModelPricing(Decimal("1.25"), Decimal(10)), "refused")
    assert changes_for(back, catalogue) == [ModelChange("openai/gpt-5", "available")]
    alias = Allowlisted("~anthropic/claude-sonnet-latest", stored)
    assert changes_for(alias, catalogue) == []


async def test_run_refreshes_at_start_and_hands_over_each_snapshot(
    provider: Provider, catalogue: Catalogue
) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()

    async def on_refresh(snapshot: object) -> None:
        await seen.put(snapshot)

    task = asyncio.create_task(catalogue.run(interval=timedelta(hours=12), on_refresh=on_refresh))
    try:
        first = await asyncio.wait_for(seen.get(), 5)
    finally:
        await stop_refresher(task)
    assert first is catalogue.snapshot and provider.calls == 1
