"""The chat path through the core alone: CPU per chat on SQLite against the in-memory store.

    uv run python benchmarks/core_chat.py [--chats 200] [--rounds 3] [--profile OUT.prof]

No HTTP and no front-end: ``Dispatcher.run_text`` runs ``/chat`` with a scripted provider
(30 words, no waiting) over 20 channels of one workspace, ``--chats`` at once, on uvloop. The
same chats run on a SQLite file through ``storage`` (``SqlStore``, the engine the bot uses)
and on the in-memory store of the unit tests, interleaved, so the difference is what the
database costs a chat, measured apart from the noise of a whole bot under load. Prints the
process CPU per chat for each, their difference and the SQL statements a chat issues.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.core.dispatch import Dispatcher
from bot.core.replies import Invocation
from bot.core.service import ProviderService
from bot.core.spend.guard import DatabaseBudgetGuard
from storage.db import Database
from storage.migrate import ensure_schema
from storage.sql_store import SqlStore
from tests.unit.core_support import KEY, FakeVault, ScriptedProvider, model_settings
from tests.unit.memory_store import MemoryStore

WORDS = " ".join(f"word{i}" for i in range(30))


async def build(
    kind: str, folder: str, traced: Callable[[str], None]
) -> tuple[Dispatcher, Database | None]:
    db: Database | None = None
    if kind == "sqlite":
        db = Database(f"sqlite:///{folder}/core.db")

        def trace(dbapi_connection: Any, _record: object) -> None:
            dbapi_connection.driver_connection._conn.set_trace_callback(traced)

        event.listen(db.engine.sync_engine, "connect", trace)
        await ensure_schema(db)
        store: object = SqlStore(db)
    else:
        store = MemoryStore()
    provider = ScriptedProvider()
    provider.answer = lambda *a, **k: ScriptedProvider.answer(WORDS)  # type: ignore[method-assign]
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    service = ProviderService(
        settings=settings,
        store=store,  # type: ignore[arg-type]
        vault=FakeVault(),
        adapters={"openrouter": provider},
        model_settings=model_settings(),
        budgets=DatabaseBudgetGuard(store, owner="bench"),  # type: ignore[arg-type]
        owner="bench",
    )
    dispatcher = Dispatcher(service)
    admin = Invocation("slack", "T1", "C0", "U0", is_admin=True)
    async for _ in dispatcher.run_text(admin, f"/apikey set {KEY}"):
        pass
    return dispatcher, db


async def one_chat(dispatcher: Dispatcher, n: int) -> None:
    ctx = Invocation("slack", "T1", f"C{n % 20}", f"U{n % 40}", is_admin=False)
    async for _ in dispatcher.run_text(ctx, f"/chat question {n}"):
        pass


async def run(
    kind: str, chats: int, profile: cProfile.Profile | None
) -> tuple[float, float, float]:
    folder = tempfile.mkdtemp(prefix="core-chat-")
    counts = {"statements": 0, "transactions": 0, "on": False}

    def traced(sql: str) -> None:
        # sqlite3's trace callback: every statement SQLite runs, on the connection's thread.
        if counts["on"]:
            counts["statements"] += 1
            counts["transactions"] += sql.startswith("BEGIN")

    dispatcher, db = await build(kind, folder, traced)
    await one_chat(dispatcher, 0)  # warm: caches, compiled statements, the connection pool
    counts["on"] = True
    if profile is not None:
        profile.enable()
    started = time.process_time()
    await asyncio.gather(*(one_chat(dispatcher, n) for n in range(1, chats + 1)))
    cpu = time.process_time() - started
    if profile is not None:
        profile.disable()
    await asyncio.sleep(0.2)  # the ledger writer and keeper settle outside the measure
    counts["on"] = False
    if db is not None:
        await db.dispose()
    return cpu * 1000 / chats, counts["statements"] / chats, counts["transactions"] / chats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="cProfile the SQLite runs into this file")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    results: dict[str, list[float]] = {"memory": [], "sqlite": []}
    statements = transactions = 0.0
    for _ in range(args.rounds):
        for kind in ("memory", "sqlite"):
            cpu, per_chat, begun = uvloop.run(
                run(kind, args.chats, profile if kind == "sqlite" else None)
            )
            results[kind].append(cpu)
            if kind == "sqlite":
                statements, transactions = per_chat, begun
    if profile is not None:
        profile.dump_stats(args.profile)
    memory = statistics.median(results["memory"])
    sqlite = statistics.median(results["sqlite"])
    print(f"\nThe chat path through the core, {args.chats} chats at once, {args.rounds} rounds\n")
    print("| store | CPU per chat, median (runs) |")
    print("| --- | ---: |")
    for kind, runs in results.items():
        shown = " / ".join(f"{x:.2f}" for x in runs)
        print(f"| {kind} | {statistics.median(runs):.2f} ms ({shown}) |")
    print(f"| SQLite − memory (the database) | {sqlite - memory:.2f} ms |")
    print(
        f"\nPer chat on SQLite: {statements:.1f} statements, {transactions:.1f} transactions"
        " (statements counted by SQLite itself, BEGIN and COMMIT included)"
    )


if __name__ == "__main__":
    main()
