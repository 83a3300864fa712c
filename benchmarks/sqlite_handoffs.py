"""SQLite under asyncio: CPU per chat-shaped unit of work, routerbot's engine against
SQLAlchemy's stock aiosqlite adapter.

    uv run python benchmarks/sqlite_handoffs.py [--chats 400] [--rounds 3]

Each "chat" is what a chat asks of the database in shape (not in SQL): a claim (one insert),
a read transaction (four selects) and a write transaction (four inserts), 400 of them at once
on one file database, on uvloop. Prints the process CPU per chat for the stock adapter (four
thread hand-offs a statement, a rollback when the pool takes a connection back) and for
``storage.db``'s engine (one hand-off a statement, no rollback after a commit), interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosqlite
import uvloop
from sqlalchemy import text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.db import Database


async def run(kind: str, chats: int) -> float:
    folder = tempfile.mkdtemp(prefix="sqlite-handoffs-")
    stock = {"module": AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3),
             "pool_reset_on_return": "rollback"}  # fmt: skip
    db = Database(f"sqlite:///{folder}/bench.db", **(stock if kind == "stock" else {}))
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INT)"))
        await conn.execute(text("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))

    async def chat(i: int) -> None:
        async with db.session() as s:
            await s.execute(text("INSERT INTO u (name) VALUES (:a) ON CONFLICT DO NOTHING"),
                            {"a": f"c{i}"})  # fmt: skip
        async with db.session() as s:
            for _ in range(4):
                (
                    await s.execute(text("SELECT id, name FROM t WHERE n = :n LIMIT 5"), {"n": i})
                ).all()
        async with db.session() as s:
            for _ in range(4):
                await s.execute(
                    text("INSERT INTO t (name, n) VALUES (:a, :n)"), {"a": "x" * 50, "n": i}
                )

    started = time.process_time()
    await asyncio.gather(*(chat(i) for i in range(chats)))
    cpu = time.process_time() - started
    await db.dispose()
    return cpu / chats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chats", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ratios = []
    for index in range(args.rounds):
        stock = uvloop.run(run("stock", args.chats))
        ours = uvloop.run(run("routerbot", args.chats))
        ratios.append(ours / stock)
        print(f"round {index + 1}: stock {stock:.2f} ms, routerbot {ours:.2f} ms of CPU a chat, "
              f"ratio {ours / stock:.2f}")  # fmt: skip
    print(f"median ratio routerbot / stock: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
