"""Spend summaries: exactly the ledger's sum over any window (rollup + partial days), the
rollup kept right by every write path, and the /costs replies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.replies import ErrorReply, Invocation, TextReply
from bot.runtime import Runtime
from storage import migrate
from storage import stores as s
from storage.db import Database
from storage.models import UsageDaily, UsageRecord, Workspace
from tests.fakes.openrouter import FakeOpenRouter
from tests.integration.spend_support import ADMIN, MEMBER, Clock, run, seed, spend_runtime
from tests.ledger_oracle import expected_groups, expected_totals

BASE = datetime(2026, 3, 1)


async def _workspace(session: AsyncSession, external_id: str) -> int:
    ws, _ = await s.get_or_create_workspace(session, platform="slack", external_id=external_id)
    assert ws.id is not None
    return ws.id


usage_rows = st.fixed_dictionaries(
    {
        "channel_id": st.sampled_from(["C1", "C2", "c3"]),
        "user_id": st.sampled_from(["U1", "U2", "u3"]),
        "model_requested": st.sampled_from(["a/m1", "b/m2"]),
        "model_served": st.one_of(st.none(), st.sampled_from(["a/m1", "a/m1-2025", "z/m"])),
        "prompt_tokens": st.integers(0, 2_000_000),
        "cached_tokens": st.integers(0, 1_000_000),
        "completion_tokens": st.integers(0, 2_000_000),
        "cost_nano": st.one_of(st.none(), st.integers(0, 2**56)),
        "cost_source": st.sampled_from(["reported", "computed", "unknown"]),
        "outcome": st.sampled_from(["ok", "ok", "cut_off", "error", "cancelled"]),
        # Four days, to the microsecond: whole days, partial days and exact midnights.
        "created_at": st.integers(0, 4 * 86_400_000_000 - 1).map(
            lambda us: BASE + timedelta(microseconds=us)
        ),
    }
)
# Window ends: on the rows' span, often at midnight, sometimes open.
window_ends = st.one_of(
    st.none(),
    st.integers(0, 4 * 24).map(lambda h: BASE + timedelta(hours=h)),
    st.integers(-86_400_000_000, 5 * 86_400_000_000).map(
        lambda us: BASE + timedelta(microseconds=us)
    ),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(usage_rows, max_size=25),
    since=window_ends,
    until=window_ends,
    channel=st.sampled_from([None, "C1", "c3"]),
)
async def test_summary_equals_the_exact_ledger_sum_over_any_window(
    db: Database,
    rows: list[dict[str, Any]],
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
) -> None:
    async with db.session() as session:
        ws = await _workspace(session, f"T-{uuid.uuid4().hex}")
        for row in rows:
            await s.record_usage(
                session, record=UsageRecord(workspace_id=ws, provider="openrouter", **row)
            )
    wanted = [
        r
        for r in rows
        if (channel is None or r["channel_id"] == channel)
        and (since is None or r["created_at"] >= since)
        and (until is None or r["created_at"] < until)
    ]
    async with db.session() as session:
        summary = await s.summarize_usage(
            session, workspace_id=ws, channel_id=channel, since=since, until=until
        )
        reference = await s.summarize_ledger(
            session, workspace_id=ws, channel_id=channel, since=since, until=until
        )
    assert summary.totals == expected_totals(wanted)
    assert summary.by_model == expected_groups(wanted, "model")
    assert summary.by_user == expected_groups(wanted, "user_id")
    assert summary.by_channel == expected_groups(wanted, "channel_id")
    assert summary == reference


async def _rollup_rows(db: Database, ws: int) -> list[tuple[Any, ...]]:
    async with db.session() as session:
        result = await session.execute(
            select(UsageDaily.__table__).where(UsageDaily.__table__.c.workspace_id == ws)  # type: ignore[attr-defined]
        )
        return sorted(tuple(r) for r in result.all())


async def test_bulk_rebuild_matches_the_incremental_rollup_and_cost_fixes(db: Database) -> None:
    async with db.session() as session:
        ws = await _workspace(session, "T-rebuild")
        other = await _workspace(session, "T-other")
        ids = []
        for i in range(40):
            record = await s.record_usage(
                session,
                record=UsageRecord(
                    workspace_id=ws if i % 4 else other,
                    channel_id=f"C{i % 3}",
                    user_id=f"U{i % 5}",
                    provider="openrouter",
                    model_requested=f"m/{i % 2}",
                    model_served=None if i % 3 else "m/served",
                    prompt_tokens=i * 10,
                    completion_tokens=i,
                    cost_nano=None if i % 7 == 0 else i * 1000,
                    cost_source="computed" if i % 2 else "reported",
                    outcome="error" if i % 11 == 0 else "ok",
                    created_at=BASE + timedelta(hours=i * 5),
                ),
            )
            ids.append(record.id)
        # Reconciliation-style corrections keep the rollup exact.
        await s.update_usage_cost(
            session, workspace_id=ws, usage_id=ids[1], cost_nano=5, cost_source="reconciled"
        )
        await s.update_usage_cost(
            session, workspace_id=ws, usage_id=ids[7], cost_nano=70, cost_source="reconciled"
        )
        assert (
            await s.update_usage_cost(
                session, workspace_id=ws, usage_id=ids[0], cost_nano=1, cost_source="x"
            )
            is None
        )
    incremental = await _rollup_rows(db, ws)
    untouched = await _rollup_rows(db, other)
    async with db.session() as session:
        await s.rebuild_rollups(session, workspace_ids=[ws])
    assert await _rollup_rows(db, ws) == incremental
    assert await _rollup_rows(db, other) == untouched
    async with db.session() as session:
        await s.rebuild_rollups(session)
    assert await _rollup_rows(db, ws) == incremental
    async with db.session() as session:
        for channel in (None, "C1"):
            summary = await s.summarize_usage(
                session, workspace_id=ws, channel_id=channel, since=None, until=None
            )
            ledger = await s.summarize_ledger(
                session, workspace_id=ws, channel_id=channel, since=None, until=None
            )
            assert summary == ledger


async def test_migration_backfills_the_rollup_from_an_existing_ledger(database_url: str) -> None:
    from alembic import command

    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            await conn.run_sync(
                lambda c: command.upgrade(migrate.alembic_config(connection=c), "0002")
            )
            await conn.commit()
        async with database.engine.begin() as conn:
            ws_id = (
                await conn.execute(
                    insert(Workspace.__table__).values(
                        platform="slack", external_id="T-old", created_at=BASE
                    )  # type: ignore[attr-defined]
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            for i in range(30):
                await conn.execute(
                    insert(UsageRecord.__table__).values(  # type: ignore[attr-defined]
                        workspace_id=ws_id,
                        channel_id=f"C{i % 2}",
                        user_id=f"U{i % 3}",
                        provider="openrouter",
                        model_requested="m/a",
                        model_served="m/b" if i % 2 else None,
                        prompt_tokens=i,
                        cached_tokens=0,
                        completion_tokens=2 * i,
                        reasoning_tokens=0,
                        cost_nano=None if i == 3 else 10**12 + i,
                        cost_source="computed" if i % 5 == 0 else "reported",
                        latency_ms=1,
                        outcome="error" if i == 4 else "ok",
                        created_at=BASE + timedelta(hours=7 * i, microseconds=i),
                    )
                )
        await migrate.ensure_schema(database)
        backfilled = await _rollup_rows(database, ws_id)
        assert backfilled
        async with database.session() as session:
            await s.rebuild_rollups(session)
            summary = await s.summarize_usage(
                session, workspace_id=ws_id, channel_id=None, since=None, until=None
            )
            ledger = await s.summarize_ledger(
                session, workspace_id=ws_id, channel_id=None, since=None, until=None
            )
        assert summary == ledger
        assert await _rollup_rows(database, ws_id) == backfilled
    finally:
        await database.dispose()


# ---- /costs -----------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 20, 15, 30))


@pytest.fixture
async def rt(tmp_path: Path, fake: FakeOpenRouter, clock: Clock) -> AsyncIterator[Runtime]:
    async with spend_runtime(f"sqlite:///{tmp_path / 'rb.db'}", fake, tmp_path, clock) as runtime:
        yield runtime


def _text(replies: list[Any]) -> str:
    assert len(replies) == 1, replies
    assert isinstance(replies[0], TextReply), replies
    return replies[0].text


async def test_channel_costs_show_totals_models_users_and_estimates(
    rt: Runtime, clock: Clock
) -> None:
    carol = Invocation("console", "acme", "general", "carol")
    await seed(rt, MEMBER, "1.25", when=clock.now - timedelta(days=3))
    await seed(
        rt,
        carol,
        "0.50",
        when=clock.now - timedelta(days=1),
        model="anthropic/claude-3.5-sonnet",
        source="computed",
    )
    await seed(rt, MEMBER, "9.00", when=clock.now, channel="random")  # another channel
    await seed(rt, MEMBER, "7.00", when=datetime(2026, 2, 27))  # last month
    reply = await run(rt, MEMBER, "/costs")
    assert isinstance(reply[0], TextReply) and not reply[0].private
    text = reply[0].text
    assert text.splitlines()[0] == (
        "Spend in this channel for March 2026 (calendar month, UTC): ≈$1.75 · 2 chats · "
        "60 tokens (20 in / 40 out)"
    )
    assert "≈ marks estimates" in text
    assert "• `openai/gpt-4o-mini` $1.25 · 1 chat · 30 tokens" in text
    assert "• `anthropic/claude-3.5-sonnet` ≈$0.5000 · 1 chat" in text
    assert "• bob $1.25" in text and "• carol ≈$0.5000" in text
    assert "By channel" not in text

    all_time = _text(await run(rt, MEMBER, "/costs all"))
    assert "for all time: ≈$8.75 · 3 chats" in all_time
    today = _text(await run(rt, MEMBER, "/costs today"))
    assert today == "No spend in this channel for today (2026-03-20 UTC)."
    rolling = _text(await run(rt, MEMBER, "/costs 30d"))
    assert "the last 30 days (since 2026-02-18 15:30 UTC): ≈$8.75" in rolling
    week = _text(await run(rt, MEMBER, "/costs week"))
    assert "this week (since Monday 2026-03-16, UTC): ≈$1.75" in week


async def test_workspace_costs_are_admin_only_and_show_channels_and_budgets(
    rt: Runtime, clock: Clock
) -> None:
    denied = await run(rt, MEMBER, "/costs workspace")
    assert isinstance(denied[0], ErrorReply) and denied[0].private
    await seed(rt, MEMBER, "1.25", when=clock.now)
    await seed(rt, MEMBER, "3.00", when=clock.now, channel="random")
    _text(await run(rt, ADMIN, "/budget set 10"))
    _text(await run(rt, ADMIN, "/budget set 2 --channel"))
    reply = await run(rt, ADMIN, "/costs workspace")
    assert isinstance(reply[0], TextReply) and reply[0].private
    text = reply[0].text
    assert "Spend in this workspace for March 2026 (calendar month, UTC): $4.25 · 2 chats" in text
    assert text.index("• `random` $3.00") < text.index("• `general` $1.25")
    assert "By model:" in text and "By user:" in text
    assert "Monthly budgets for March 2026 (calendar month, UTC):" in text
    assert "• Workspace: $4.25 of $10.00 (42%)" in text
    assert "• Channel `general`: $1.25 of $2.00 (62%)" in text


async def test_a_month_summary_reads_the_rollup_not_the_ledger(rt: Runtime, clock: Clock) -> None:
    for day in range(1, 20):
        await seed(rt, MEMBER, "0.01", when=datetime(2026, 3, day, 12))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(rt.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        channel = _text(await run(rt, MEMBER, "/costs month"))
        workspace = _text(await run(rt, ADMIN, "/costs workspace month"))
    finally:
        event.remove(rt.db.engine.sync_engine, "before_cursor_execute", record)
    assert "$0.1900 · 19 chats" in channel and "$0.1900 · 19 chats" in workspace
    assert any("usage_daily" in st for st in statements)
    assert not [st for st in statements if "usage_record" in st]

    # A rolling window reads whole days from the rollup and only the partial day raw.
    statements.clear()
    event.listen(rt.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        _text(await run(rt, MEMBER, "/costs 30d"))
    finally:
        event.remove(rt.db.engine.sync_engine, "before_cursor_execute", record)
    raw = [st for st in statements if "usage_record" in st]
    assert len(raw) == 1 and "created_at <" in raw[0]


async def test_summaries_count_rows_with_timezone_aware_bounds(db: Database) -> None:
    async with db.session() as session:
        ws = await _workspace(session, "T-aware")
        await s.record_usage(
            session,
            record=UsageRecord(
                workspace_id=ws,
                channel_id="C",
                user_id="U",
                provider="p",
                model_requested="m",
                cost_nano=5,
                cost_source="reported",
                outcome="ok",
                created_at=BASE + timedelta(hours=23),
            ),
        )
    plus_two = timezone(timedelta(hours=2))
    async with db.session() as session:
        # 2026-03-02 00:30+02:00 is 2026-03-01 22:30 UTC: the row (23:00 UTC) is after it.
        summary = await s.summarize_usage(
            session,
            workspace_id=ws,
            channel_id=None,
            since=datetime(2026, 3, 2, 0, 30, tzinfo=plus_two),
            until=datetime(2026, 3, 3, tzinfo=UTC),
        )
    assert summary.totals.cost_nano == 5
