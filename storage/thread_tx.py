"""Whole transactions of Core statements, on SQLite in one thread hand-off.

The chat path's two transactions (the read before a chat, the write after it) are a handful
of small statements each. Through an ``AsyncSession`` every statement pays for the ORM, the
session's state machine, a greenlet switch and, on SQLite, a hand-off to the connection's
thread and back; together that was most of the CPU a chat cost (``benchmarks/core_chat.py``).

Here a transaction is a plain function over a :class:`SyncTx` (run statements, read rows),
written once with SQLAlchemy Core statements built at import time:

- on SQLite it runs whole on the aiosqlite connection's own thread, between ``BEGIN`` (or
  ``BEGIN IMMEDIATE`` for a write, so two writers queue on the busy timeout instead of
  failing on a lock upgrade) and ``COMMIT``: one hand-off for the transaction. This
  process's writes take turns on an ``asyncio.Lock`` first: SQLite has one writer at a time,
  and its busy handler waits by sleeping (1, 2, 5 … 100 ms), which put a tail of hundreds of
  milliseconds on a burst of chats (``benchmarks/discord_load.py``: overhead p99 1.5 s
  without the lock, 0.5–0.8 s with it). Other processes still meet the busy timeout. Each statement
  is compiled once for the dialect, with its bind and result processors (dates, booleans),
  so the rows are what SQLAlchemy would have returned;
- on PostgreSQL it runs inside ``AsyncConnection.run_sync``: the same function, the same
  statements, one round trip each as before, without the ORM.

Errors are SQLAlchemy's on both (a ``sqlite3`` error is wrapped as ``DBAPIError`` would
have been), so ``storage.db.is_transient`` and the outage sentences treat them alike.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import greenlet_spawn

from storage.db import Database

__all__ = ["SyncTx", "run_transaction"]

T = TypeVar("T")
Params = Mapping[str, Any]


class SyncTx(Protocol):
    """One open transaction, driven synchronously."""

    #: The backend's name (``sqlite``, ``postgresql``), for dialect-specific statements.
    dialect: str

    def rows(self, stmt: ClauseElement, params: Params | None = None) -> list[Sequence[Any]]:
        """Every row a statement returns (a ``SELECT`` or a ``RETURNING``)."""
        ...

    def first(self, stmt: ClauseElement, params: Params | None = None) -> Sequence[Any] | None: ...

    def run(self, stmt: ClauseElement, params: Params | None = None) -> int:
        """Run a statement that returns no rows; its row count."""
        ...

    def rows_many(self, stmt: ClauseElement, params: Sequence[Params]) -> list[Sequence[Any]]:
        """One ``INSERT … RETURNING`` for several parameter sets: the rows, in their order."""
        ...

    def run_many(self, stmt: ClauseElement, params: Sequence[Params]) -> None:
        """One statement, several parameter sets (``executemany``)."""
        ...


async def run_transaction(db: Database, work: Callable[[SyncTx], T], *, write: bool) -> T:
    """Run ``work`` in one transaction: committed when it returns, rolled back if it raises."""
    if db.is_sqlite:
        if not write:
            return await _on_sqlite_thread(db, work, write=False)
        async with db.sqlite_writer:
            return await _on_sqlite_thread(db, work, write=True)
    async with db.engine.begin() as conn:
        return await conn.run_sync(lambda sync: work(_ConnectionTx(sync)))


class _ConnectionTx:
    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect.name

    def rows(self, stmt: ClauseElement, params: Params | None = None) -> list[Sequence[Any]]:
        return list(self._conn.execute(stmt, params).all())  # type: ignore[call-overload]

    def first(self, stmt: ClauseElement, params: Params | None = None) -> Sequence[Any] | None:
        return self._conn.execute(stmt, params).first()  # type: ignore[call-overload,no-any-return]

    def run(self, stmt: ClauseElement, params: Params | None = None) -> int:
        return int(self._conn.execute(stmt, params).rowcount)  # type: ignore[call-overload,attr-defined]

    def run_many(self, stmt: ClauseElement, params: Sequence[Params]) -> None:
        if params:
            self._conn.execute(stmt, list(params))  # type: ignore[call-overload]

    def rows_many(self, stmt: ClauseElement, params: Sequence[Params]) -> list[Sequence[Any]]:
        if not params:
            return []
        # SQLAlchemy batches these into multi-row statements ("insertmanyvalues").
        return list(self._conn.execute(stmt, list(params)).all())  # type: ignore[call-overload]


# --- SQLite: the whole transaction on the connection's thread --------------------------------


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: The bind names in the order of the ``?`` placeholders.
    names: tuple[str, ...]
    #: Values the statement carries itself (a ``LIMIT``, a literal), by bind name.
    fixed: dict[str, Any]
    binds: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...]

    def parameters(self, params: Params | None) -> tuple[Any, ...]:
        given = params or {}
        values = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = given[name] if name in given else self.fixed[name]
            values.append(process(value) if process is not None and value is not None else value)
        return tuple(values)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            process(value) if process is not None else value
            for process, value in zip(self.results, raw, strict=True)
        )


_compiled: dict[tuple[int, str], tuple[ClauseElement, _Compiled]] = {}


def _compile(stmt: ClauseElement, dialect: Dialect) -> _Compiled:
    key = (id(stmt), dialect.name)
    found = _compiled.get(key)
    if found is not None and found[0] is stmt:
        return found[1]
    compiled: Any = stmt.compile(dialect=dialect)
    if compiled.insert_prefetch or compiled.update_prefetch:
        # A Python-side column default would be computed by SQLAlchemy's execution context,
        # which this path skips: the statements here give every such column its value.
        raise ValueError(f"statement relies on Python-side defaults: {compiled.string}")
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors
    fixed = compiled.construct_params(_check=False)
    results = tuple(
        column.type._cached_result_processor(dialect, None) for column in compiled._result_columns
    )
    entry = _Compiled(
        compiled.string,
        names,
        {name: fixed.get(name) for name in names},
        tuple(processors.get(name) for name in names),
        results,
    )
    _compiled[key] = (stmt, entry)
    return entry


class _SqliteTx:
    __slots__ = ("_cursor", "_dialect")
    dialect = "sqlite"

    def __init__(self, cursor: sqlite3.Cursor, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def _execute(self, stmt: ClauseElement, params: Params | None) -> _Compiled:
        compiled = _compile(stmt, self._dialect)
        parameters = compiled.parameters(params)
        try:
            self._cursor.execute(compiled.sql, parameters)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(compiled.sql, parameters, exc, sqlite3.Error) from exc
        return compiled

    def rows(self, stmt: ClauseElement, params: Params | None = None) -> list[Sequence[Any]]:
        compiled = self._execute(stmt, params)
        return [compiled.row(raw) for raw in self._cursor.fetchall()]

    def first(self, stmt: ClauseElement, params: Params | None = None) -> Sequence[Any] | None:
        found = self.rows(stmt, params)
        return found[0] if found else None

    def run(self, stmt: ClauseElement, params: Params | None = None) -> int:
        self._execute(stmt, params)
        return self._cursor.rowcount

    def rows_many(self, stmt: ClauseElement, params: Sequence[Params]) -> list[Sequence[Any]]:
        # On the connection's thread a statement costs microseconds: one per parameter set.
        return [row for p in params for row in self.rows(stmt, p)]

    def run_many(self, stmt: ClauseElement, params: Sequence[Params]) -> None:
        if not params:
            return
        compiled = _compile(stmt, self._dialect)
        sets = [compiled.parameters(p) for p in params]
        try:
            self._cursor.executemany(compiled.sql, sets)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(compiled.sql, sets, exc, sqlite3.Error) from exc


async def _on_sqlite_thread(db: Database, work: Callable[[SyncTx], T], *, write: bool) -> T:
    dialect = db.engine.dialect
    pooled = await db.engine.raw_connection()
    try:
        driver = pooled.driver_connection  # aiosqlite.Connection
        assert driver is not None
        raw: sqlite3.Connection = driver._conn  # type: ignore[attr-defined]

        def transaction() -> T:
            cursor = raw.cursor()
            step = "BEGIN IMMEDIATE" if write else "BEGIN"
            try:
                cursor.execute(step)
                result = work(_SqliteTx(cursor, dialect))
                step = "COMMIT"
                raw.commit()
                return result
            except BaseException as exc:
                if raw.in_transaction:
                    raw.rollback()
                if isinstance(exc, sqlite3.Error):
                    raise DBAPIError.instance(step, (), exc, sqlite3.Error) from exc
                raise
            finally:
                cursor.close()

        handed = asyncio.ensure_future(driver._execute(transaction))  # type: ignore[attr-defined]
        try:
            return await asyncio.shield(handed)
        except asyncio.CancelledError:
            # The connection goes back to the pool only once its thread is done with it.
            await asyncio.wait([handed])
            raise
    finally:
        # Back to the pool (in a greenlet: the pool's reset may talk to the connection).
        await greenlet_spawn(pooled.close)
