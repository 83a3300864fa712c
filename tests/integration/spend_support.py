"""Shared helpers for the spend tests: a runtime on a given database with an injected clock,
and ledger seeding through the real store (so the rollup is kept as in production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from bot.config import Settings
from bot.core.pricing import usd_to_nano
from bot.core.replies import Invocation, Reply
from bot.core.spend.guard import DatabaseBudgetGuard
from bot.runtime import Runtime, build_runtime
from storage import stores
from storage.crypto import generate_key
from storage.models import BudgetReservation, UsageRecord
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter

ADMIN = Invocation("console", "acme", "general", "alice", is_admin=True)
MEMBER = Invocation("console", "acme", "general", "bob", is_admin=False)


@dataclass
class Clock:
    """A settable naive-UTC clock for the service and the budget guard."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def settings_for(database_url: str, fake: FakeOpenRouter, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        routerbot_secret_key=SecretStr(generate_key()),
        openrouter_base_url=fake.base_url,
        fireworks_base_url=fake.base_url,
        routerbot_data_dir=tmp_path,
    )


@asynccontextmanager
async def spend_runtime(
    database_url: str, fake: FakeOpenRouter, tmp_path: Path, clock: Clock
) -> AsyncIterator[Runtime]:
    """A runtime whose service and budget guard share ``clock``, with the fake's key set."""
    rt, _ = await build_runtime(settings_for(database_url, fake, tmp_path))
    rt.service.clock = clock
    rt.service.budgets = DatabaseBudgetGuard(rt.store, clock=clock)
    try:
        replies = await run(rt, ADMIN, f"/apikey set {DEFAULT_KEY}")
        assert "Saved" in replies[-1].text, replies  # type: ignore[union-attr]
        yield rt
    finally:
        await rt.aclose()


async def run(rt: Runtime, ctx: Invocation, text: str) -> list[Reply]:
    return [r async for r in rt.dispatcher.run_text(ctx, text)]


async def seed(
    rt: Runtime,
    ctx: Invocation,
    usd: str,
    *,
    when: datetime,
    channel: str | None = None,
    model: str = "openai/gpt-4o-mini",
    source: str = "reported",
) -> None:
    """Record a past chat of ``usd`` through ``stores.record_usage`` (rollup included)."""
    ws_id = await rt.service.workspace_id(ctx)
    async with rt.db.session() as session:
        await stores.record_usage(
            session,
            record=UsageRecord(
                workspace_id=ws_id,
                channel_id=channel or ctx.channel_id,
                user_id=ctx.user_id,
                provider="openrouter",
                model_requested=model,
                prompt_tokens=10,
                completion_tokens=20,
                cost_nano=usd_to_nano(Decimal(usd)),
                cost_source=source,
                outcome="ok",
                created_at=when,
            ),
        )


async def live_reservations(rt: Runtime) -> int:
    async with rt.db.session() as session:
        return int((await session.execute(select(func.count(BudgetReservation.id)))).scalar_one())  # type: ignore[arg-type]
