"""Budgets that are never overshot (SPEC §5), on SQLite and PostgreSQL, against the fake
OpenRouter over HTTP (which stops an answer at ``max_completion_tokens``): 50 concurrent
chats under a workspace limit and under one person's limit, the capped answer's notice, and
the notices of an each-user limit given once per person however many chats cross at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.base import ChatMessage
from bot.core.replies import ChatCompleted, ChatFailed, Invocation, Notice, Reply
from bot.core.spend.limits import estimate_prompt_tokens, tokens_cost_nano
from bot.runtime import Runtime
from storage.models import UsageRecord
from tests.fakes.openrouter import FakeOpenRouter
from tests.integration.spend_support import (
    ADMIN,
    Clock,
    live_reservations,
    run,
    seed,
    spend_runtime,
)

MID_MARCH = datetime(2026, 3, 15, 12, 0)
MODEL = "openai/gpt-4o-mini"
#: gpt-4o-mini at the fake and on the allowlist: $0.15 and $0.60 per 1M tokens.
IN_NANO_PER_1M, OUT_NANO_PER_1M = 150_000_000, 600_000_000
#: claude-3.5-sonnet likewise: $3 and $15 per 1M tokens (a few answers use up a few cents).
DEAR = "anthropic/claude-3.5-sonnet"
DEAR_IN_NANO_PER_1M = 3_000_000_000
PROMPT = "count to three"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter(answer_words=1200) as server:
        yield server


@pytest.fixture
async def rt(database_url: str, fake: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with spend_runtime(database_url, fake, tmp_path, Clock(MID_MARCH)) as runtime:
        yield runtime


async def _chat(rt: Runtime, ctx: Invocation, model: str = MODEL) -> list[Reply]:
    return [r async for r in rt.service.chats.chat(ctx, PROMPT, model)]


async def _ledger(rt: Runtime) -> list[UsageRecord]:
    async with rt.db.session() as session:
        return list((await session.execute(select(UsageRecord))).scalars().all())


@pytest.mark.parametrize("scope", ["workspace", "person"])
async def test_fifty_concurrent_chats_never_overshoot_a_limit(
    rt: Runtime, fake: FakeOpenRouter, scope: str
) -> None:
    """Zero overshoot: sum(charged) <= limit + sum_i max(0, real prompt cost_i - P_i).

    Why it holds: each chat is admitted under the workspace's budget lock only if its hold
    ``P_i + ceil(max_tokens_i * out / 1e6)`` fits what is left after the month's spend and the
    live holds; the provider stops the answer at ``max_tokens_i`` (here the fake, which
    reports what it produced), so the chat's charge is at most its hold plus the error of its
    prompt estimate ``real prompt cost_i - P_i``; and a hold is released only after the
    chat's usage row is written. So at every moment spend + holds <= limit + the estimate
    errors so far. The fake counts a prompt's words plus 3 a message, below the estimate of
    ceil(chars / 3) + 4 a message + 3, so that error is 0 here and the bound is the limit.
    """
    fake.words_delay = 0.0005  # keeps the streams overlapping
    fake.answer_words = 800
    # $0.05: room for 3 answers of 1,000 tokens (the most one chat holds while a limit is
    # tight) and a shorter fourth; 50 chats of 800 tokens want $0.60.
    limit = "0.05"
    if scope == "workspace":
        await run(rt, ADMIN, f"/budget set {limit}")
        askers = [Invocation("console", "acme", f"c{i % 5}", f"user{i}") for i in range(50)]
    else:
        await run(rt, ADMIN, f"/budget set {limit} --user bob")
        askers = [Invocation("console", "acme", f"c{i % 5}", "bob") for i in range(50)]

    results = await asyncio.gather(*(_chat(rt, ctx, DEAR) for ctx in askers))
    endings = [r[-1] for r in results]
    done = [e for e in endings if isinstance(e, ChatCompleted)]
    refused = [e for e in endings if isinstance(e, ChatFailed)]
    rows = await _ledger(rt)

    prompt_estimate = tokens_cost_nano(
        estimate_prompt_tokens([ChatMessage(role="user", content=PROMPT)]), DEAR_IN_NANO_PER_1M
    )
    estimate_error = sum(
        max(0, r.prompt_tokens * DEAR_IN_NANO_PER_1M // 10**6 - prompt_estimate) for r in rows
    )
    spent = sum(r.cost_nano or 0 for r in rows)
    assert estimate_error == 0
    assert spent <= 50_000_000 + estimate_error, (spent, len(done))
    # The limit really was contended: some were refused, some answers cut at their cap.
    assert refused and all("budget" in r.text for r in refused)
    capped = [d for d in done if any(n.startswith("⚠ The answer stopped at") for n in d.notices)]
    assert capped
    assert len(rows) == len(done) and await live_reservations(rt) == 0
    # Every request that reached the fake carried its cap, and no answer went past it.
    sent_caps = [r.json["max_completion_tokens"] for r in fake.chat_requests]
    assert len(sent_caps) == len(done) and all(isinstance(c, int) and c >= 256 for c in sent_caps)
    assert max(r.completion_tokens for r in rows) <= max(sent_caps)


async def test_an_answer_stopped_by_the_limits_cap_says_which_limit(
    rt: Runtime, fake: FakeOpenRouter
) -> None:
    ctx = Invocation("console", "acme", "general", "bob")
    await run(rt, ADMIN, "/budget set 0.01 --channel")
    await seed(rt, ctx, "0.0094", when=MID_MARCH)  # $0.0006 left: room for 997 tokens
    done = (await _chat(rt, ctx))[-1]
    assert isinstance(done, ChatCompleted)
    cap = fake.chat_requests[-1].json["max_completion_tokens"]
    prompt = tokens_cost_nano(
        estimate_prompt_tokens([ChatMessage(role="user", content=PROMPT)]), IN_NANO_PER_1M
    )
    assert cap == (600_000 - prompt) * 10**6 // OUT_NANO_PER_1M == 997
    assert done.notices[0] == (
        "⚠ The answer stopped at 997 tokens to stay within this channel's $0.0100 monthly "
        "budget ($0.0006 was left for chats starting then); an admin can raise the limit with "
        "/budget set."
    )
    # And the channel passed 80 % with this answer (told once, under it).
    assert done.notices[1].startswith("⚠ This channel has used 99% of its $0.0100 monthly")
    row = (await _ledger(rt))[-1]
    assert row.completion_tokens == cap and row.cost_nano is not None
    assert row.cost_nano <= 600_000
    # Too little is left for a minimum answer: the next chat is refused, nothing sent.
    refused = (await _chat(rt, ctx))[-1]
    assert isinstance(refused, ChatFailed)
    assert refused.text.startswith("This channel is too close to its $0.0100 budget")
    assert len(fake.chat_requests) == 1


async def test_each_user_notices_go_out_once_per_person_under_concurrency(
    rt: Runtime, fake: FakeOpenRouter
) -> None:
    fake.answer_words = 5
    await run(rt, ADMIN, "/budget set 1 --each-user")
    bob = Invocation("console", "acme", "general", "bob")
    await seed(rt, bob, "0.80", when=MID_MARCH)
    await seed(rt, Invocation("console", "acme", "general", "carol"), "0.50", when=MID_MARCH)
    results = await asyncio.gather(*(_chat(rt, bob) for _ in range(10)))
    notices = [n for r in results for n in r if isinstance(n, Notice)]
    assert [n.audience for n in notices] == ["asker", "direct"]
    assert notices[0].text.startswith("⚠ You have used 80% of the $1.00 each-person")
    assert notices[1].user_id == "alice" and "for bob" in notices[1].text
    # carol, at 50 %, hears nothing; at 80 % she hears it once too.
    carol = Invocation("console", "acme", "general", "carol")
    assert not [r for r in await _chat(rt, carol) if isinstance(r, Notice)]
    await seed(rt, carol, "0.40", when=MID_MARCH)
    assert [r.audience for r in await _chat(rt, carol) if isinstance(r, Notice)] == [
        "asker",
        "direct",
    ]
