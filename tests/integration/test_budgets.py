"""Budgets end to end (SPEC §5) on SQLite and PostgreSQL: admin-only management, the 80 %
notice once per month, refusal at 100 %, month turnover, channel vs workspace limits, and
enforcement under 50 concurrent chats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.base import ChatMessage, ModelPricing
from bot.core.allowlist import pricing_of as _pricing_of
from bot.core.errors import BudgetExceeded
from bot.core.pricing import usd_to_nano
from bot.core.replies import ChatCompleted, ChatFailed, ErrorReply, Invocation, Reply, TextReply
from bot.core.spend.guard import DatabaseBudgetGuard, Reservation, estimate_nano
from bot.runtime import Runtime
from storage import stores
from storage.models import Budget, UsageRecord
from tests.fakes.openrouter import FakeModel, FakeOpenRouter
from tests.integration.spend_support import (
    ADMIN,
    MEMBER,
    Clock,
    live_reservations,
    run,
    seed,
    spend_runtime,
)

MID_MARCH = datetime(2026, 3, 15, 12, 0)
OTHER_CHANNEL = Invocation("console", "acme", "random", "bob")


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(MID_MARCH)


@pytest.fixture
async def rt(
    database_url: str, fake: FakeOpenRouter, tmp_path: Path, clock: Clock
) -> AsyncIterator[Runtime]:
    async with spend_runtime(database_url, fake, tmp_path, clock) as runtime:
        yield runtime


def text_of(replies: list[Reply]) -> str:
    assert len(replies) == 1, replies
    reply = replies[0]
    assert isinstance(reply, TextReply), reply
    return reply.text


async def chat(rt: Runtime, ctx: Invocation, prompt: str = "hi") -> ChatCompleted | ChatFailed:
    last = (await run(rt, ctx, f"/chat --model openai/gpt-4o-mini {prompt}"))[-1]
    assert isinstance(last, ChatCompleted | ChatFailed), last
    return last


async def test_members_cannot_see_or_change_budgets(rt: Runtime) -> None:
    for command in (
        "/budget",
        "/budget set 5",
        "/budget set 5 --channel",
        "/budget clear",
        "/budget clear --channel",
    ):
        replies = await run(rt, MEMBER, command)
        assert len(replies) == 1
        reply = replies[0]
        assert isinstance(reply, ErrorReply), command
        assert reply.private
        assert "Only workspace admins" in reply.text
    async with rt.db.session() as session:
        assert (await session.execute(select(Budget))).first() is None


async def test_set_show_and_clear(rt: Runtime, clock: Clock) -> None:
    await seed(rt, ADMIN, "12.50", when=clock.now - timedelta(days=2))
    reply = (await run(rt, ADMIN, "/budget set 50"))[-1]
    assert isinstance(reply, TextReply) and reply.private
    assert "The workspace's monthly budget is now $50.00" in reply.text
    assert "$12.50 spent so far in March 2026 (25%" in reply.text
    text = text_of(await run(rt, ADMIN, "/budget set 20 --channel"))
    assert "This channel's monthly budget is now $20.00" in text

    shown = text_of(await run(rt, ADMIN, "/budget"))
    assert "March 2026 (calendar month, UTC)" in shown
    assert "• Workspace: $12.50 of $50.00 (25%)" in shown
    assert "• This channel: $12.50 of $20.00 (62%)" in shown
    elsewhere = text_of(
        await run(rt, Invocation("console", "acme", "random", "alice", True), "/budget")
    )
    assert "• This channel: no limit" in elsewhere

    assert "Removed the monthly budget of this channel" in text_of(
        await run(rt, ADMIN, "/budget clear --channel")
    )
    assert "no monthly budget on this channel" in text_of(
        await run(rt, ADMIN, "/budget clear --channel")
    )
    shown = text_of(await run(rt, ADMIN, "/budget"))
    assert "• This channel: no limit" in shown and "$50.00" in shown
    text_of(await run(rt, ADMIN, "/budget clear"))
    assert "• Workspace: no limit" in text_of(await run(rt, ADMIN, "/budget"))


async def test_notice_at_80_percent_is_sent_once_per_month(rt: Runtime, clock: Clock) -> None:
    text_of(await run(rt, ADMIN, "/budget set 1"))
    text_of(await run(rt, ADMIN, "/budget set 1 --channel"))
    await seed(rt, ADMIN, "0.70", when=clock.now)
    first = await chat(rt, MEMBER)
    assert isinstance(first, ChatCompleted) and first.notices == ()

    await seed(rt, ADMIN, "0.10", when=clock.now)
    crossing = await chat(rt, MEMBER)
    assert isinstance(crossing, ChatCompleted)
    # One notice per budget: the workspace's and the channel's both crossed 80 %.
    assert len(crossing.notices) == 2
    assert crossing.notices[0].startswith("⚠ This workspace has used 80% of its $1.00 monthly")
    assert crossing.notices[1].startswith("⚠ This channel has used 80% of its $1.00 monthly")
    again = await chat(rt, MEMBER)
    assert isinstance(again, ChatCompleted) and again.notices == ()
    assert await live_reservations(rt) == 0

    # A new month is a new period: spend starts from zero and the notice can come again.
    clock.now = datetime(2026, 4, 2, 9, 0)
    await seed(rt, ADMIN, "0.85", when=clock.now)
    april = await chat(rt, MEMBER)
    assert isinstance(april, ChatCompleted)
    assert [n.split(" has used ")[1][:3] for n in april.notices] == ["85%", "85%"]


async def test_refusal_at_100_percent_until_the_month_turns(rt: Runtime, clock: Clock) -> None:
    clock.now = datetime(2026, 3, 31, 23, 50)
    text_of(await run(rt, ADMIN, "/budget set 2 --channel"))
    await seed(rt, ADMIN, "2.00", when=clock.now - timedelta(hours=5))
    refused = await chat(rt, MEMBER)
    assert isinstance(refused, ChatFailed)
    assert refused.text == (
        "This channel has used its $2.00 budget for March 2026 ($2.00 spent), so new chats are "
        "refused until the month turns on 1 April (UTC) or an admin raises the limit with "
        "/budget set."
    )
    async with rt.db.session() as session:
        rows = (await session.execute(select(UsageRecord))).scalars().all()
    assert len(rows) == 1  # a refused chat never reached the provider and costs nothing

    # Almost at the limit: the estimate for this chat does not fit, and the reply says so.
    clock.now = datetime(2026, 4, 1, 0, 5)
    await seed(rt, ADMIN, "1.9999", when=clock.now)
    close = await chat(rt, MEMBER)
    assert isinstance(close, ChatFailed)
    assert "too close to its $2.00 budget for April 2026" in close.text

    # The month turned and the limit rose: chats run again.
    text_of(await run(rt, ADMIN, "/budget set 3 --channel"))
    assert isinstance(await chat(rt, MEMBER), ChatCompleted)


async def test_channel_and_workspace_limits_apply_separately(rt: Runtime, clock: Clock) -> None:
    text_of(await run(rt, ADMIN, "/budget set 100"))
    text_of(await run(rt, ADMIN, "/budget set 1 --channel"))
    await seed(rt, ADMIN, "1.00", when=clock.now)
    in_general = await chat(rt, MEMBER)
    assert isinstance(in_general, ChatFailed) and in_general.text.startswith(
        "This channel has used"
    )
    assert isinstance(await chat(rt, OTHER_CHANNEL), ChatCompleted)  # no limit on #random

    # Now the workspace limit binds everywhere, #random included.
    text_of(await run(rt, ADMIN, "/budget set 1.50"))
    await seed(rt, ADMIN, "0.60", when=clock.now, channel="random")
    in_random = await chat(rt, OTHER_CHANNEL)
    assert isinstance(in_random, ChatFailed) and in_random.text.startswith(
        "This workspace has used"
    )
    text_of(await run(rt, ADMIN, "/budget clear"))
    assert isinstance(await chat(rt, OTHER_CHANNEL), ChatCompleted)

    # Raising the channel's limit lifts its refusal at once.
    text_of(await run(rt, ADMIN, "/budget set 5 --channel"))
    assert isinstance(await chat(rt, MEMBER), ChatCompleted)


async def test_fifty_concurrent_reservations_admit_exactly_what_fits(
    rt: Runtime, clock: Clock
) -> None:
    ws_id = await rt.service.workspace_id(ADMIN)
    estimate = 1_000_000
    async with rt.db.session() as session:  # room for 10 holds, not 11
        await stores.set_budget(
            session, workspace_id=ws_id, channel_id="", limit_nano=10_500_000, set_by="t"
        )
    guard = DatabaseBudgetGuard(rt.store, clock=clock)

    async def attempt() -> Reservation | None:
        try:
            return await guard.reserve(
                workspace_id=ws_id, channel_id="general", estimate_nano=estimate
            )
        except BudgetExceeded:
            return None

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    held = [r for r in results if r is not None]
    assert len(held) == 10
    assert await live_reservations(rt) == 10
    for reservation in held:
        assert list(await guard.settle(reservation, cost_nano=0)) == []
    assert await live_reservations(rt) == 0


async def test_a_crashed_workers_holds_lapse(rt: Runtime, clock: Clock) -> None:
    ws_id = await rt.service.workspace_id(ADMIN)
    text_of(await run(rt, ADMIN, "/budget set 1"))
    guard = DatabaseBudgetGuard(rt.store, clock=clock, ttl=timedelta(minutes=15))
    await guard.reserve(
        workspace_id=ws_id, channel_id="general", estimate_nano=usd_to_nano(Decimal("0.9"))
    )
    with pytest.raises(BudgetExceeded):
        await guard.reserve(
            workspace_id=ws_id, channel_id="general", estimate_nano=usd_to_nano(Decimal("0.2"))
        )
    clock.now += timedelta(minutes=16)  # the first hold's worker never settled it
    await guard.reserve(
        workspace_id=ws_id, channel_id="general", estimate_nano=usd_to_nano(Decimal("0.2"))
    )
    assert await live_reservations(rt) == 1  # the lapsed hold was pruned


async def _concurrent_chats(
    rt: Runtime, count: int, model: str
) -> list[ChatCompleted | ChatFailed]:
    async def one(i: int) -> ChatCompleted | ChatFailed:
        ctx = Invocation("console", "acme", "general", f"user{i}")
        last = [r async for r in rt.service.chats.chat(ctx, "count to three", model)][-1]
        assert isinstance(last, ChatCompleted | ChatFailed)
        return last

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _month_spend(rt: Runtime) -> tuple[int, list[UsageRecord]]:
    ws_id = await rt.service.workspace_id(ADMIN)
    async with rt.db.session() as session:
        rows = list((await session.execute(select(UsageRecord))).scalars().all())
        spent = await stores.spent_since(
            session, workspace_id=ws_id, channel_id=None, first_day=MID_MARCH.replace(day=1).date()
        )
    assert spent == sum(r.cost_nano or 0 for r in rows)  # the rollup agrees with the ledger
    return spent, rows


async def test_fifty_concurrent_chats_never_overshoot_when_estimates_hold(
    rt: Runtime, fake: FakeOpenRouter
) -> None:
    fake.words_delay = 0.005  # keeps the streams overlapping (pacing on the fake's side)
    ws_id = await rt.service.workspace_id(ADMIN)
    async with rt.db.session() as session:
        allowed = await stores.get_model(session, workspace_id=ws_id, model_id="openai/gpt-4o-mini")
    assert allowed is not None
    estimate = estimate_nano(
        [ChatMessage(role="user", content="count to three")], _pricing_of(allowed)
    )
    limit = estimate * 10 + estimate // 2
    async with rt.db.session() as session:
        await stores.set_budget(
            session, workspace_id=ws_id, channel_id="general", limit_nano=limit, set_by="t"
        )

    results = await _concurrent_chats(rt, 50, "openai/gpt-4o-mini")
    done = [r for r in results if isinstance(r, ChatCompleted)]
    refused = [r for r in results if isinstance(r, ChatFailed)]
    spent, rows = await _month_spend(rt)
    # Real costs are below the estimates here, so the limit is never crossed at all.
    assert spent <= limit
    assert len(done) >= 10
    assert refused and all("budget" in r.text for r in refused)
    assert len(rows) == len(done)
    assert await live_reservations(rt) == 0


async def test_overshoot_is_bounded_by_the_chats_in_flight(
    rt: Runtime, fake: FakeOpenRouter
) -> None:
    # The provider charges 20x what the allowlist's pricing predicts: estimates fall short.
    fake.add_model(FakeModel("test/pricey", "Pricey", prompt="0.00002", completion="0.00002"))
    fake.words_delay = 0.005
    ws_id = await rt.service.workspace_id(ADMIN)
    async with rt.db.session() as session:
        await stores.add_model(
            session,
            workspace_id=ws_id,
            provider="openrouter",
            model_id="test/pricey",
            input_nano_per_1m=10_000_000,  # $0.01 per 1M tokens
            output_nano_per_1m=10_000_000,
            cached_input_nano_per_1m=None,
            added_by="t",
        )
    prompt = [ChatMessage(role="user", content="count to three")]
    estimate = estimate_nano(prompt, ModelPricing(Decimal("0.01"), Decimal("0.01"), None))
    limit = estimate * 5
    async with rt.db.session() as session:
        await stores.set_budget(
            session, workspace_id=ws_id, channel_id="", limit_nano=limit, set_by="t"
        )

    results = await _concurrent_chats(rt, 50, "test/pricey")
    done = [r for r in results if isinstance(r, ChatCompleted)]
    spent, rows = await _month_spend(rt)
    costs = [r.cost_nano or 0 for r in rows]
    assert max(costs) > estimate  # the premise: real costs beat the estimates
    assert 1 <= len(done) < 50
    # Each admitted chat can add at most what it cost beyond its estimate.
    assert spent <= limit + sum(max(0, c - estimate) for c in costs)
    # Once over, everyone is refused until the month turns or the limit rises.
    assert spent > limit
    late = await chat(rt, MEMBER)
    assert isinstance(late, ChatFailed) and "This workspace has used" in late.text
    assert await live_reservations(rt) == 0
