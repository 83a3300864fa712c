"""Spend summaries at scale: ``/costs`` and ``/costs workspace`` over a large ledger.

    uv run python benchmarks/costs_summary.py [--rows 1000000] [--backends sqlite,postgres]

Loads ``--rows`` usage rows (default 1,000,000) spread over 365 days, 50 workspaces and 500
channels (10 a workspace, 40 users a workspace, 12 models; busy workspaces and channels are
much busier than quiet ones, as in real teams), builds the daily rollup in bulk with
``storage.stores.rebuild_rollups`` (the same aggregates the write path keeps row by row), sets
a few budgets, then times the real command path (``Dispatcher.run`` with ``Costs``: service,
summary, budget status, rendering) for a month, the rolling 30 days and all time.

SQLite: a fresh file in a temporary directory. PostgreSQL: a database ``rb_bench_<hex>``
created on ``postgresql://postgres@127.0.0.1:5432`` and dropped afterwards.

Prints p50/p95 per backend, query and period, for random channels/workspaces and for the
busiest one, with how many ledger rows the period covers and how many rollup rows it reads;
and, for reference, the busiest month summarised straight from the ledger (no rollup).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select, text

from bot.config import DEFAULT_MODEL_SETTINGS, Settings
from bot.core.commands import Costs, Period
from bot.core.dispatch import Dispatcher
from bot.core.periods import period_window
from bot.core.pricing import ModelSettings
from bot.core.replies import Invocation, TextReply
from bot.core.service import ProviderService
from bot.core.spend.guard import DatabaseBudgetGuard
from storage import stores
from storage.crypto import KeyVault, generate_key
from storage.db import Database
from storage.migrate import upgrade
from storage.models import UsageDaily, UsageRecord
from storage.sql_store import SqlStore

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
#: Late in a month, so "month" spans 27 whole days plus today.
NOW = datetime(2026, 3, 28, 14, 30)
DAYS = 365
CHUNK = 50_000
COLUMNS = (
    "workspace_id",
    "channel_id",
    "user_id",
    "provider",
    "model_requested",
    "model_served",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_nano",
    "cost_source",
    "generation_id",
    "latency_ms",
    "outcome",
    "created_at",
)
MODELS = [f"vendor{i % 5}/model-{i}" for i in range(12)]
PERIODS: tuple[Period, ...] = ("month", "30d", "all")


@dataclass(frozen=True)
class Shape:
    workspaces: int
    channels_per_ws: int
    users_per_ws: int

    def ws_weights(self) -> list[float]:
        # Zipf-like: the busiest workspace has ~9 % of all chats, the quietest ~0.5 %.
        return [1 / (i + 1) ** 0.8 for i in range(self.workspaces)]

    def channel_weights(self) -> list[float]:
        return [1 / (i + 1) for i in range(self.channels_per_ws)]


def generate(
    rows: int, ws_ids: list[int], shape: Shape, seed: int = 7
) -> Iterator[list[tuple[Any, ...]]]:
    """Deterministic rows in chunks (the same data on every backend)."""
    rng = random.Random(seed)
    ws_w = shape.ws_weights()
    ch_w = shape.channel_weights()
    model_w = [1 / (i + 1) for i in range(len(MODELS))]
    start = (NOW - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    span_us = int((NOW - start).total_seconds() * 1_000_000)
    made = 0
    while made < rows:
        n = min(CHUNK, rows - made)
        wss = rng.choices(range(len(ws_ids)), ws_w, k=n)
        chs = rng.choices(range(shape.channels_per_ws), ch_w, k=n)
        mds = rng.choices(MODELS, model_w, k=n)
        chunk = []
        for i in range(n):
            ws = wss[i]
            roll = rng.random()
            outcome = (
                "error"
                if roll < 0.04
                else "cut_off"
                if roll < 0.06
                else "cancelled"
                if roll < 0.07
                else "ok"
            )
            prompt = rng.randint(20, 8000)
            completion = 0 if outcome == "error" else rng.randint(1, 2000)
            if outcome == "error":
                cost, source = 0, "none"
            elif outcome == "cancelled":
                cost, source = None, "unknown"
            elif roll < 0.17:
                cost, source = prompt * 150 + completion * 600, "computed"
            else:
                cost, source = prompt * 3000 + completion * 15000, "reported"
            created = start + timedelta(microseconds=rng.randrange(span_us))
            chunk.append(
                (
                    ws_ids[ws],
                    f"C{ws:02d}{chs[i]:02d}",
                    f"U{ws:02d}{rng.randrange(shape.users_per_ws):03d}",
                    "openrouter",
                    mds[i],
                    None,
                    prompt,
                    prompt // 4,
                    completion,
                    0,
                    cost,
                    source,
                    f"gen-{made + i}",
                    rng.randint(200, 9000),
                    outcome,
                    created,
                )
            )
        made += n
        yield chunk


async def create_workspaces(db: Database, count: int) -> list[int]:
    ids = []
    async with db.session() as session:
        for i in range(count):
            ws, _ = await stores.get_or_create_workspace(
                session, platform="slack", external_id=f"T{i:04d}"
            )
            assert ws.id is not None
            ids.append(ws.id)
    return ids


def _sqlite_time(moment: datetime) -> str:
    # SQLAlchemy's storage format for DateTime on SQLite.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(path: Path, rows: int, ws_ids: list[int], shape: Shape) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    placeholders = ",".join("?" * len(COLUMNS))
    sql = f"INSERT INTO usage_record ({','.join(COLUMNS)}) VALUES ({placeholders})"
    with conn:
        for chunk in generate(rows, ws_ids, shape):
            conn.executemany(sql, [(*r[:-1], _sqlite_time(r[-1])) for r in chunk])
    conn.close()


async def load_postgres(url: str, rows: int, ws_ids: list[int], shape: Shape) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for chunk in generate(rows, ws_ids, shape):
            await conn.copy_records_to_table("usage_record", records=chunk, columns=list(COLUMNS))
    finally:
        await conn.close()


async def finish_load(db: Database, ws_ids: list[int], shape: Shape) -> float:
    """Bulk rollup, statistics and a few budgets; returns the rollup build time."""
    started = time.perf_counter()
    async with db.session() as session:
        await stores.rebuild_rollups(session)
    rollup_seconds = time.perf_counter() - started
    # Planner statistics, as autovacuum (PostgreSQL) or PRAGMA optimize (SQLite) would keep.
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    async with db.session() as session:
        for i, ws in enumerate(ws_ids):
            await stores.set_budget(
                session, workspace_id=ws, channel_id="", limit_nano=10**12, set_by="bench"
            )
            for c in range(2):
                await stores.set_budget(
                    session,
                    workspace_id=ws,
                    channel_id=f"C{i:02d}{c:02d}",
                    limit_nano=10**11,
                    set_by="bench",
                )
    return rollup_seconds


def _service(db: Database, url: str) -> ProviderService:
    settings = Settings(
        _env_file=None, database_url=url, routerbot_secret_key=SecretStr(generate_key())
    )  # type: ignore[call-arg]
    return ProviderService(
        settings=settings,
        store=SqlStore(db),
        vault=KeyVault.from_config(generate_key()),
        adapters={},
        model_settings=ModelSettings.load(DEFAULT_MODEL_SETTINGS),
        budgets=DatabaseBudgetGuard(SqlStore(db), clock=lambda: NOW),
        clock=lambda: NOW,
    )


async def _time(dispatcher: Dispatcher, ctx: Invocation, command: Costs) -> float:
    started = time.perf_counter()
    replies = [r async for r in dispatcher.run(ctx, command)]
    elapsed = time.perf_counter() - started
    assert len(replies) == 1, replies
    assert isinstance(replies[0], TextReply), replies
    return elapsed * 1000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _sizes(db: Database, ws: int, channel: str | None, period: Period) -> tuple[int, int]:
    """Ledger rows the period covers, and rollup rows a summary of it reads."""
    window = period_window(period, NOW)
    u = UsageRecord.__table__.c  # type: ignore[attr-defined]
    d = UsageDaily.__table__.c  # type: ignore[attr-defined]
    ledger = select(func.count()).where(u.workspace_id == ws)
    rollup = select(func.count()).where(d.workspace_id == ws, d.scope == (channel or ""))
    if channel is not None:
        ledger = ledger.where(u.channel_id == channel)
    if window.since is not None:
        ledger = ledger.where(u.created_at >= window.since)
        rollup = rollup.where(d.day >= window.since.date())
    async with db.session() as session:
        return int((await session.execute(ledger)).scalar_one()), int(
            (await session.execute(rollup)).scalar_one()
        )


async def measure(
    db: Database, url: str, ws_ids: list[int], shape: Shape, iterations: int
) -> list[list[str]]:
    dispatcher = Dispatcher(_service(db, url))
    rng = random.Random(11)
    table = []
    busiest_ws = 0  # weights are decreasing: index 0 is the busiest workspace and channel
    for scope in ("channel", "workspace"):
        for period in PERIODS:
            for which in ("random", "busiest"):
                samples = []
                n = iterations if which == "random" else max(20, iterations // 4)
                for _ in range(n):
                    w = rng.randrange(shape.workspaces) if which == "random" else busiest_ws
                    c = rng.randrange(shape.channels_per_ws) if which == "random" else 0
                    ctx = Invocation(
                        "slack", f"T{w:04d}", f"C{w:02d}{c:02d}", "U000", is_admin=True
                    )
                    await dispatcher.service.workspace_id(
                        ctx
                    )  # cached after the first call, as in a bot
                    samples.append(await _time(dispatcher, ctx, Costs(period=period, scope=scope)))  # type: ignore[arg-type]
                ledger_rows, rollup_rows = await _sizes(
                    db, ws_ids[busiest_ws], "C0000" if scope == "channel" else None, period
                )
                table.append(
                    [
                        f"/costs{' workspace' if scope == 'workspace' else ''}",
                        period,
                        which,
                        f"{statistics.median(samples):.2f}",
                        f"{_pct(samples, 0.95):.2f}",
                        f"{ledger_rows:,}" if which == "busiest" else "",
                        f"{rollup_rows:,}" if which == "busiest" else "",
                    ]
                )
        # Reference: the same month summary straight from the ledger, without the rollup.
        window = period_window("month", NOW)
        samples = []
        for _ in range(max(20, iterations // 4)):
            started = time.perf_counter()
            async with db.session() as session:
                await stores.summarize_ledger(
                    session,
                    workspace_id=ws_ids[busiest_ws],
                    channel_id="C0000" if scope == "channel" else None,
                    since=window.since,
                    until=None,
                )
            samples.append((time.perf_counter() - started) * 1000)
        table.append(
            [
                f"(ledger scan, {scope})",
                "month",
                "busiest",
                f"{statistics.median(samples):.2f}",
                f"{_pct(samples, 0.95):.2f}",
                "",
                "",
            ]
        )
    return table


async def run_sqlite(
    rows: int, shape: Shape, iterations: int
) -> tuple[list[list[str]], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="rb_bench_") as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        await upgrade(url)
        db = Database(url)
        try:
            ws_ids = await create_workspaces(db, shape.workspaces)
            t0 = time.perf_counter()
            await asyncio.to_thread(load_sqlite, path, rows, ws_ids, shape)
            load = time.perf_counter() - t0
            rollup = await finish_load(db, ws_ids, shape)
            table = await measure(db, url, ws_ids, shape, iterations)
        finally:
            await db.dispose()
    return table, {"load": load, "rollup": rollup}


async def run_postgres(
    rows: int, shape: Shape, iterations: int
) -> tuple[list[list[str]], dict[str, float]]:
    import asyncpg

    name = f"rb_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{PG_SERVER}/test")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG_SERVER}/{name}"
        try:
            await upgrade(url)
            db = Database(url)
            try:
                ws_ids = await create_workspaces(db, shape.workspaces)
                t0 = time.perf_counter()
                await load_postgres(url, rows, ws_ids, shape)
                load = time.perf_counter() - t0
                rollup = await finish_load(db, ws_ids, shape)
                table = await measure(db, url, ws_ids, shape, iterations)
            finally:
                await db.dispose()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    return table, {"load": load, "rollup": rollup}


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  ".join(
                c.rjust(w) if i >= 3 else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--channels", type=int, default=500, help="in all (split evenly)")
    parser.add_argument("--iterations", type=int, default=200, help="timed commands per row")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    shape = Shape(args.workspaces, max(1, args.channels // args.workspaces), 40)
    load_avg = os.getloadavg()
    print(
        f"{args.rows:,} usage rows over {DAYS} days, {shape.workspaces} workspaces, "
        f"{shape.workspaces * shape.channels_per_ws} channels; now = {NOW:%Y-%m-%d %H:%M} UTC; "
        f"{os.cpu_count()} CPUs, load average {load_avg[0]:.2f} at start",
        flush=True,
    )
    results: list[list[str]] = []
    for backend in args.backends.split(","):
        runner = run_sqlite if backend == "sqlite" else run_postgres
        table, timings = await runner(args.rows, shape, args.iterations)
        print(
            f"{backend}: loaded in {timings['load']:.1f} s, rollup built in {timings['rollup']:.1f} s",
            flush=True,
        )
        results.extend([backend, *row] for row in table)
    print()
    _print_table(
        [
            "backend",
            "command",
            "period",
            "target",
            "p50 ms",
            "p95 ms",
            "ledger rows*",
            "rollup rows*",
        ],
        results,
    )
    print("* for the busiest channel / workspace: ledger rows the period covers, rollup rows read")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
