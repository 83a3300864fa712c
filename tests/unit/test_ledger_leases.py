"""Chats in flight, leases and settling, over the in-memory store: a chat is on record from the
provider's acceptance until its usage row; a dead process's chat is settled once, from the
provider's record (``GET /generation``) where it has one, else estimated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
import respx

from adapters.base import GenerationInfo, StreamAccepted, StreamFinished, TextDelta, Usage
from adapters.errors import ProviderUnavailableError
from adapters.openrouter import OpenRouterAdapter
from bot.core import commands as c
from bot.core.chat.settle import GIVE_UP_AFTER
from bot.core.pricing import compute_cost, usd_to_nano
from bot.core.replies import ChatCompleted, ChatDelta, ChatStarted, Reply
from bot.core.service import ProviderService
from bot.core.spend.limits import estimate_prompt_tokens
from tests.unit.core_support import (
    ADMIN,
    KEY,
    MEMBER,
    STRONG,
    Core,
    FakeVault,
    build_core,
    model_settings,
)

LEASE = timedelta(seconds=45)
PROVIDER_COST = Decimal("0.0042")
RECORD = GenerationInfo(
    id="gen-1",
    total_cost=PROVIDER_COST,
    model="anthropic/claude-sonnet-4.5-20250929",
    native_tokens_prompt=21,
    native_tokens_completion=7,
    native_tokens_cached=3,
)


async def core_with_key() -> Core:
    core = build_core()
    await core.run(ADMIN, f"/apikey set {KEY}")
    return core


def streaming(core: Core, generation_id: str | None = "gen-1") -> None:
    """The next chat is accepted as ``generation_id`` and streams three words, then usage."""
    core.provider.scripts.append(
        [
            StreamAccepted(generation_id, STRONG),
            TextDelta("One"),
            TextDelta(" two"),
            TextDelta(" three"),
            StreamFinished(Usage(10, 3, cost=Decimal("0.0001")), STRONG, generation_id, "stop"),
        ]
    )


async def started(core: Core) -> AsyncGenerator[Reply, None]:
    """A chat stopped after its first text (as a process killed there would be)."""
    replies = core.dispatcher.run(MEMBER, c.Chat(prompt="tell me"))
    assert isinstance(await anext(replies), ChatStarted)
    assert isinstance(await anext(replies), ChatDelta)
    await core.service.flights.drain()
    return replies


def another_process(core: Core) -> ProviderService:
    """A second process on the same database and provider: its own owner, the same clock."""
    return ProviderService(
        settings=core.service.settings,
        store=core.store,
        vault=FakeVault(),
        adapters={"openrouter": core.provider},
        model_settings=model_settings(),
        clock=core.clock,
    )


# -- on record from acceptance ------------------------------------------------------------------


async def test_an_accepted_chat_is_on_record_until_its_usage_row_is_written() -> None:
    core = await core_with_key()
    streaming(core)
    replies = await started(core)
    [row] = core.store.data.flights.values()
    assert (row.generation_id, row.owner, row.usage_id) == ("gen-1", core.service.deps.owner, None)
    assert row.lease_until == core.clock.now + LEASE
    assert row.prompt_tokens == estimate_prompt_tokens(core.provider.requests[-1].messages)
    assert core.store.data.ledger == []
    rest = [r async for r in replies]
    assert isinstance(rest[-1], ChatCompleted)
    assert core.store.data.flights == {}  # released with the usage row
    assert [r.generation_id for r in core.store.data.ledger] == ["gen-1"]


async def test_a_short_chat_costs_no_database_work_for_its_flight() -> None:
    core = await core_with_key()
    streaming(core)
    before = core.store.data.transactions
    await core.run(MEMBER, "/chat quick")
    # prepare (1) and record (1); the chat ended before its row was due to be written
    assert core.store.data.transactions - before == 2
    assert core.store.data.flights == {}


async def test_a_retry_before_text_replaces_the_generation_on_record() -> None:
    core = await core_with_key()
    core.provider.scripts.append(
        [StreamAccepted("gen-a", STRONG), StreamAccepted("gen-b", STRONG), TextDelta("Hi")]
    )
    replies = core.dispatcher.run(MEMBER, c.Chat(prompt="retry"))
    await anext(replies)
    await anext(replies)
    await core.service.flights.drain()
    assert [r.generation_id for r in core.store.data.flights.values()] == ["gen-b"]
    await replies.aclose()


# -- leases -------------------------------------------------------------------------------------


async def test_leases_are_renewed_while_chats_run_and_never_when_idle() -> None:
    core = await core_with_key()
    await core.run(ADMIN, "/budget set 50")
    flights = core.service.flights
    before = core.store.data.transactions
    await flights.renew()
    assert core.store.data.transactions == before  # idle: nothing written

    streaming(core)
    replies = await started(core)
    [hold] = core.store.data.holds.values()
    assert hold.owner == core.service.deps.owner
    core.clock.now += timedelta(seconds=15)
    await flights.renew()
    [row] = core.store.data.flights.values()
    assert hold.expires_at == row.lease_until == core.clock.now + LEASE
    assert row.streamed_chars == len("One")
    await replies.aclose()


async def test_a_dead_process_hold_stops_counting_within_a_lease() -> None:
    core = await core_with_key()
    await core.run(ADMIN, "/budget set 50")
    streaming(core)
    replies = await started(core)  # this process "dies" here
    budgets = core.store.data.holds
    ws_id = next(iter(budgets.values())).workspace_id
    tx = core.store.transaction
    async with tx() as uow:
        assert await uow.budgets.held(ws_id, None, core.clock.now) > 0
    core.clock.now += LEASE + timedelta(seconds=1)
    async with tx() as uow:
        assert await uow.budgets.held(ws_id, None, core.clock.now) == 0
    await another_process(core).settler.sweep()
    assert budgets == {}  # pruned by the next sweep
    del replies


# -- settling -----------------------------------------------------------------------------------


async def test_a_dead_process_chat_is_settled_once_from_the_providers_record() -> None:
    core = await core_with_key()
    streaming(core)
    replies = await started(core)  # killed mid-answer
    core.provider.generations["gen-1"] = RECORD
    other = another_process(core)
    assert await other.settler.sweep() == 0  # its lease has not lapsed: the owner lives
    core.clock.now += LEASE + timedelta(seconds=1)
    assert await other.settler.sweep() == 1
    [row] = core.store.data.ledger
    assert (row.outcome, row.cost_nano, row.cost_source) == (
        "interrupted",
        usd_to_nano(PROVIDER_COST),
        "reconciled",
    )
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens) == (21, 3, 7)
    assert (row.generation_id, row.model_served, row.user_id) == ("gen-1", RECORD.model, "bob")
    assert core.store.data.flights == {}
    # Were the first process alive after all, its chat would not be written twice.
    assert isinstance([r async for r in replies][-1], ChatCompleted)
    assert len(core.store.data.ledger) == 1


async def test_without_the_providers_record_the_chat_is_estimated() -> None:
    core = await core_with_key()
    streaming(core)
    replies = await started(core)
    prompt = estimate_prompt_tokens(core.provider.requests[-1].messages)
    core.clock.now += timedelta(seconds=15)
    await core.service.flights.renew()  # the owner noted what it had streamed
    core.clock.now += LEASE + timedelta(seconds=1)
    await another_process(core).settler.sweep()
    [row] = core.store.data.ledger
    pricing = core.service.deps.model_settings.price("openrouter", STRONG)
    expected = compute_cost(Usage(prompt_tokens=prompt, completion_tokens=1), pricing)
    assert expected is not None and expected > 0
    assert (row.outcome, row.cost_source, row.cost_nano) == (
        "interrupted",
        "estimated",
        usd_to_nano(expected),
    )
    assert core.provider.generation_lookups == ["gen-1"]
    costs = (await core.run(ADMIN, "/costs"))[-1]
    assert "≈$" in costs.text  # type: ignore[union-attr]
    del replies


async def test_a_chat_without_a_generation_id_is_estimated_without_asking() -> None:
    core = await core_with_key()
    streaming(core, generation_id=None)
    replies = await started(core)
    core.clock.now += LEASE + timedelta(seconds=1)
    await another_process(core).settler.sweep()
    [row] = core.store.data.ledger
    assert row.cost_source == "estimated" and row.generation_id is None
    assert core.provider.generation_lookups == []
    del replies


async def test_a_provider_that_cannot_be_asked_is_asked_again_then_estimated() -> None:
    core = await core_with_key()
    streaming(core)
    replies = await started(core)
    core.provider.generations["gen-1"] = ProviderUnavailableError(status_code=503)
    other = another_process(core)
    core.clock.now += LEASE + timedelta(seconds=1)
    assert await other.settler.sweep() == 1
    assert core.store.data.ledger == []  # left for later, not guessed
    assert await other.settler.sweep() == 0  # not due again yet
    core.clock.now += GIVE_UP_AFTER
    assert await other.settler.sweep() == 1
    [row] = core.store.data.ledger
    assert row.cost_source == "estimated"
    assert core.store.data.flights == {}
    del replies


async def test_a_cancelled_chat_gets_the_providers_cost_afterwards() -> None:
    core = await core_with_key()
    streaming(core)
    replies = await started(core)
    await replies.aclose()  # Slack's Stop, a shutdown
    [row] = core.store.data.ledger
    assert (row.outcome, row.cost_nano, row.cost_source, row.generation_id) == (
        "cancelled",
        None,
        "unknown",
        "gen-1",
    )
    [flight] = core.store.data.flights.values()
    assert flight.usage_id == row.id and flight.streamed_chars == len("One")
    core.provider.generations["gen-1"] = RECORD
    core.clock.now += timedelta(seconds=1)
    assert await core.service.settler.sweep() == 1  # its own process settles it
    [row] = core.store.data.ledger
    assert (row.outcome, row.cost_nano, row.cost_source, row.completion_tokens) == (
        "cancelled",
        usd_to_nano(PROVIDER_COST),
        "reconciled",
        7,
    )
    assert core.store.data.flights == {}


async def test_two_processes_sweeping_at_once_settle_each_chat_once() -> None:
    core = await core_with_key()
    abandoned = []
    for i in range(5):
        streaming(core, generation_id=f"gen-{i}")
        abandoned.append(await started(core))
        core.provider.generations[f"gen-{i}"] = RECORD
    core.clock.now += LEASE + timedelta(seconds=1)
    counts = await asyncio.gather(*(another_process(core).settler.sweep() for _ in range(2)))
    assert sum(counts) == 5
    assert sorted(r.generation_id or "" for r in core.store.data.ledger) == [
        f"gen-{i}" for i in range(5)
    ]


# -- GET /generation through the real adapter ----------------------------------------------------

BASE = "https://or.test/api/v1"


@pytest.fixture
async def openrouter() -> AsyncIterator[OpenRouterAdapter]:
    async with OpenRouterAdapter(BASE) as adapter:
        yield adapter


def with_adapter(core: Core, adapter: OpenRouterAdapter) -> ProviderService:
    other = another_process(core)
    other.deps.adapters = {"openrouter": adapter}
    return other


GENERATION = {
    "data": {
        "id": "gen-1",
        "total_cost": 0.0042,
        "model": RECORD.model,
        "native_tokens_prompt": 21,
        "native_tokens_completion": 7,
    }
}


@pytest.mark.parametrize("not_yet", [0, 2])
async def test_generation_found_even_after_its_short_404_window(
    openrouter: OpenRouterAdapter, not_yet: int
) -> None:
    core = await core_with_key()
    streaming(core)
    replies = await started(core)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(f"{BASE}/generation").mock(
            side_effect=[httpx.Response(404, json={"error": {"code": 404}})] * not_yet
            + [httpx.Response(200, json=GENERATION)]
        )
        core.clock.now += LEASE + timedelta(seconds=1)
        assert await with_adapter(core, openrouter).settler.sweep() == 1
    assert route.call_count == not_yet + 1
    assert route.calls.last.request.url.params["id"] == "gen-1"
    [row] = core.store.data.ledger
    assert (row.cost_nano, row.cost_source) == (usd_to_nano(PROVIDER_COST), "reconciled")
    del replies


async def test_generation_never_found_is_estimated(openrouter: OpenRouterAdapter) -> None:
    core = await core_with_key()
    streaming(core)
    replies = await started(core)
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/generation").mock(
            return_value=httpx.Response(404, json={"error": {"code": 404}})
        )
        core.clock.now += LEASE + timedelta(seconds=1)
        await with_adapter(core, openrouter).settler.sweep()
    assert route.call_count > 1  # polled through the 404 window first
    [row] = core.store.data.ledger
    assert row.cost_source == "estimated" and row.cost_nano
    del replies


async def test_a_process_never_settles_its_own_running_chat() -> None:
    """Its lease lapsed (renewals could not reach the database): the chat is still running
    here, so this process's sweep leaves it, and it is recorded once when it ends."""
    core = await core_with_key()
    streaming(core)
    replies = await started(core)
    core.clock.now += LEASE + timedelta(seconds=1)
    assert await core.service.settler.sweep() == 1  # claimed back, not settled
    assert core.store.data.ledger == []
    [row] = core.store.data.flights.values()
    assert row.lease_until == core.clock.now + LEASE
    assert isinstance([r async for r in replies][-1], ChatCompleted)
    assert [(r.outcome, r.cost_source) for r in core.store.data.ledger] == [("ok", "reported")]
    assert core.store.data.flights == {}


async def test_only_the_holds_of_running_chats_are_renewed() -> None:
    """A hold whose release failed belongs to no chat any more: it lapses, even while this
    process keeps renewing the holds of its running chats."""
    core = await core_with_key()
    await core.run(ADMIN, "/budget set 50")
    ws_id = next(iter(core.store.data.workspaces))
    async with core.store.transaction() as tx:
        leaked = await tx.budgets.hold(
            ws_id,
            "general",
            amount_nano=1,
            now=core.clock.now,
            ttl=LEASE,
            owner=core.service.deps.owner,
        )
    streaming(core)
    replies = await started(core)
    core.clock.now += timedelta(seconds=15)
    await core.service.flights.renew()
    holds = core.store.data.holds
    assert holds[leaked].expires_at == core.clock.now - timedelta(seconds=15) + LEASE
    [renewed] = [h for hold_id, h in holds.items() if hold_id != leaked]
    assert renewed.expires_at == core.clock.now + LEASE
    await replies.aclose()
