"""bot.core.catalogue.chat without a network: what a chat keeps of a long conversation, and
when it says so."""

from __future__ import annotations

from decimal import Decimal

from adapters.base import ChatMessage, ModelPricing
from adapters.catalogue import CatalogueEntry, CataloguePricing
from bot.core.catalogue import Catalogue
from bot.core.catalogue.chat import current_pricing, estimate_tokens, fit_context


async def _catalogue(*entries: CatalogueEntry) -> Catalogue:
    async def fetch() -> list[CatalogueEntry]:
        return list(entries)

    catalogue = Catalogue(fetch)
    await catalogue.refresh()
    return catalogue


def _turns(n: int, size: int = 300) -> list[ChatMessage]:
    messages = [ChatMessage("system", "Be brief.")]
    for i in range(n):
        messages.append(ChatMessage("user", f"q{i} " + "x" * size))
        messages.append(ChatMessage("assistant", f"a{i} " + "y" * size))
    return messages


async def test_system_and_newest_stay_and_orphaned_answers_go() -> None:
    catalogue = await _catalogue(CatalogueEntry("s/small", context_length=1_000))
    messages = [*_turns(6), ChatMessage("user", "newest")]
    fit = fit_context(catalogue, "s/small", messages, max_completion_tokens=200)
    assert fit.messages[0].content == "Be brief." and fit.messages[-1].content == "newest"
    assert fit.messages[1].role == "user"  # never an answer without its question
    assert sum(estimate_tokens(m) for m in fit.messages) <= 800


async def test_turns_left_out_is_said_the_first_time_only() -> None:
    catalogue = await _catalogue(CatalogueEntry("s/small", context_length=1_000))
    history = [ChatMessage("system", "Be brief.")]
    notices = []
    for i in range(8):
        fit = fit_context(
            catalogue,
            "s/small",
            [*history, ChatMessage("user", f"q{i} " + "x" * 300)],
            max_completion_tokens=200,
        )
        notices.append(fit.notice)
        history += [ChatMessage("user", f"q{i} " + "x" * 300), ChatMessage("assistant", "y" * 300)]
    said = [i for i, notice in enumerate(notices) if notice is not None]
    assert len(said) == 1 and notices[said[0]] is not None
    assert "`s/small`'s context of 1,000 tokens" in str(notices[said[0]])
    assert all(notice is None for notice in notices[: said[0]])


async def test_nothing_is_cut_without_a_known_context() -> None:
    catalogue = await _catalogue(CatalogueEntry("s/unknown"))
    messages = [*_turns(50), ChatMessage("user", "newest")]
    assert fit_context(catalogue, "s/unknown", messages).messages == messages
    assert fit_context(None, "s/unknown", messages).messages == messages


async def test_computed_costs_use_the_current_price() -> None:
    stored = ModelPricing(Decimal(1), Decimal(2), Decimal("0.1"))
    catalogue = await _catalogue(
        CatalogueEntry("a/b", pricing=CataloguePricing(Decimal(3), Decimal(4)))
    )
    assert current_pricing(catalogue, "a/b:nitro", stored) == ModelPricing(
        Decimal(3), Decimal(4), Decimal("0.1")
    )
    assert current_pricing(catalogue, "c/d", stored) == stored
