"""SQLite under asyncio: one thread hand-off per statement, and no pool rollback after a
commit, with results, row counts, errors and rollbacks as SQLAlchemy's own adapter gives them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'hops.db'}")
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield database
    await database.dispose()


@pytest.fixture
def handoffs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(getattr(fn, "__name__", type(fn).__name__))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_a_transaction_costs_a_hand_off_per_statement_and_its_commit(
    db: Database, handoffs: list[str]
) -> None:
    async with db.session() as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
        rows = (await session.execute(text("SELECT id, name FROM t"))).all()
    assert [tuple(r) for r in rows] == [(1, "a")]
    # insert, select, commit: nothing for cursors, and no rollback when the pool takes it back
    assert len(handoffs) == 3, handoffs


async def test_row_counts_and_last_row_ids(db: Database) -> None:
    async with db.session() as session:
        inserted = await session.execute(text("INSERT INTO t (name) VALUES ('a'), ('b')"))
        assert inserted.rowcount == 2
        updated = await session.execute(text("UPDATE t SET name = name || '!'"))
        assert updated.rowcount == 2
    async with db.engine.connect() as conn:
        result = await conn.execute(text("INSERT INTO t (name) VALUES ('c')"))
        assert result.lastrowid == 3
        await conn.rollback()


async def _twice(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('x')"))
        await session.execute(text("INSERT INTO t (name) VALUES ('x')"))


async def _no_such_table(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("SELECT nothing FROM nowhere"))


async def test_errors_are_sqlalchemy_errors_and_roll_back(db: Database) -> None:
    with pytest.raises(IntegrityError):
        await _twice(db)
    with pytest.raises(OperationalError):
        await _no_such_table(db)
    async with db.session() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_a_connection_left_in_a_transaction_is_rolled_back(db: Database) -> None:
    conn = await db.engine.connect()
    await conn.execute(text("INSERT INTO t (name) VALUES ('left open')"))
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None and driver.in_transaction
    await conn.close()  # never committed
    assert not driver.in_transaction
    async with db.session() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_many_rows_at_once(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(50)]
        )
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 50
