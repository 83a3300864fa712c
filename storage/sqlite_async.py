"""SQLite under asyncio with one thread hand-off per statement instead of four.

aiosqlite runs every call on its connection's thread, and SQLAlchemy's adapter makes four of
them for a statement: open a cursor, execute, fetch the rows, close. Each hand-off wakes the
thread, wakes the event loop back and trades the GIL twice; under load that costs more CPU
than the statement itself (``benchmarks/slack_load.py``: ~44 hand-offs a chat, the biggest
single item of the profile). This adapter does the four steps in one call on the same thread,
and returns the rows with the cursor's description, row count and last row id, so SQLAlchemy
reads them as it would from the cursor. Everything else (the connection, its thread, commits,
errors, the busy timeout) is aiosqlite's and SQLAlchemy's, unchanged; server-side cursors
(``stream_results``) keep SQLAlchemy's own adapter.

Used by :func:`storage.db.make_engine` for SQLite URLs, through ``create_async_engine``'s
``module`` argument (the DBAPI the dialect drives).
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

__all__ = ["one_hop_dbapi"]


class _Executed:
    """What SQLAlchemy reads from a cursor after ``execute``, captured on the thread."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, description: Any = None, rowcount: int = -1, lastrowid: Any = None):
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.arraysize = 1

    def close(self) -> None:
        """The real cursor was closed on the thread, right after the rows were read."""


_NOT_EXECUTED = _Executed()


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    #: ``close`` has nothing to await: see :meth:`_Executed.close`.
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No cursor is opened here (that was a hand-off of its own): execute opens one.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _NOT_EXECUTED  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]

        def run() -> tuple[_Executed, list[Any] | None]:
            cursor = connection._conn.cursor()
            try:
                cursor.execute(operation, () if parameters is None else parameters)
                rows = cursor.fetchall() if cursor.description else None
                return _Executed(cursor.description, cursor.rowcount, cursor.lastrowid), rows
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            executed, rows = await connection._execute(run)  # type: ignore[no-untyped-call]
        self._cursor = executed  # type: ignore[assignment]
        if rows is not None:
            self._rows = collections.deque(rows)
        return self

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]

        def run() -> _Executed:
            cursor = connection._conn.cursor()
            try:
                cursor.executemany(operation, seq_of_parameters)
                return _Executed(cursor.description, cursor.rowcount, cursor.lastrowid)
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            executed = await connection._execute(run)  # type: ignore[no-untyped-call]
        self._cursor = executed  # type: ignore[assignment]
        return self


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneHopCursor  # type: ignore[assignment]


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _OneHopConnection(self, adapted._connection)


def one_hop_dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module for ``create_async_engine(…, module=…)`` on ``sqlite+aiosqlite``."""
    return _OneHopDBAPI(aiosqlite, sqlite3)
