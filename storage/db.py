"""Engines and sessions: SQLite (WAL, busy timeout) by default, PostgreSQL for several workers."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.sqlite_async import one_hop_dbapi

SQLITE_BUSY_TIMEOUT_MS = 5000
#: How long a write that must not be lost (a chat's usage row) keeps retrying a database that
#: is briefly unreachable: longer than a PostgreSQL restart or a managed failover's switch.
WRITE_RETRY_SECONDS = 30.0


def async_url(url: str) -> URL:
    """Map the user-facing ``DATABASE_URL`` to an async driver URL.

    ``sqlite:///path`` -> ``sqlite+aiosqlite:///path``;
    ``postgresql://`` / ``postgres://`` -> ``postgresql+asyncpg://``.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"DATABASE_URL must be sqlite:// or postgresql://, not {backend}://")


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout first: switching to WAL needs a lock another process may hold.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # Another process may be switching this brand-new file to WAL at this very moment (the
    # switch takes an exclusive lock the busy handler does not wait for). The mode is stored
    # in the file, so this connection uses WAL as soon as that switch lands.
    with contextlib.suppress(sqlite3.OperationalError):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
    # A connection back in the pool is rolled back only when it is inside a transaction:
    # nearly every one comes back from a commit, and aiosqlite's rollback is a thread
    # hand-off of its own (a sixth of a chat's hand-offs before this).
    if dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    url = async_url(database_url)
    if is_sqlite(url):
        db_path = url.database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        # One thread hand-off per statement instead of four (see storage.sqlite_async).
        kwargs.setdefault("module", one_hop_dbapi())
        kwargs.setdefault("pool_reset_on_return", None)  # _sqlite_reset does it when needed
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "reset", _sqlite_reset)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        # Sizing only applies to the default queue pool; NullPool rejects these arguments.
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_async_engine(url, **kwargs)


def _asyncpg_connection_error(exc: BaseException) -> bool:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError  # the connection failed or was lost
        | asyncpg.exceptions.OperatorInterventionError  # shutting down, starting up (57xxx)
        | asyncpg.InterfaceError,  # "connection is closed"
    )


def is_transient(exc: BaseException) -> bool:
    """Whether a failed transaction may succeed if simply tried again.

    True when the server could not be reached or dropped the connection (a restart, a
    failover: refused connections surface as plain ``OSError`` from the driver's connect) or
    SQLite stayed locked past its busy timeout. A constraint violation or a bug is not
    transient. The whole chain is inspected, since SQLAlchemy wraps the driver's error.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) or _asyncpg_connection_error(current):
            return True
        if isinstance(current, DBAPIError):
            if current.connection_invalidated:
                return True
            text = str(current.orig).lower()
            if "database is locked" in text or "database is busy" in text:
                return True
        # SQLAlchemy raises its wrapper ``from`` the driver's error.
        current = current.__cause__ or current.__context__
    return False


def _raised_by_database(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) came out of SQLAlchemy or a database driver, rather
    than, say, an HTTP client's socket."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SQLAlchemyError) or _asyncpg_connection_error(current):
            return True
        tb = current.__traceback__
        while tb is not None:
            module = tb.tb_frame.f_globals.get("__name__", "")
            if module.startswith(("sqlalchemy.", "asyncpg.", "aiosqlite.")):
                return True
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return False


def is_database_outage(exc: BaseException) -> bool:
    """The database is unreachable or locked for now: a transient failure raised by the
    database layer (a socket error from an HTTP client is not one)."""
    return is_transient(exc) and _raised_by_database(exc)


class Database:
    """One engine and its session factory, shared by everything in a process."""

    def __init__(self, database_url: str, **engine_kwargs: Any) -> None:
        self.url = async_url(database_url)
        self.engine = make_engine(database_url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @property
    def sqlite_writer(self) -> asyncio.Lock:
        """SQLite has one writer at a time: this process's chat-path writes queue here for it
        (see ``storage.thread_tx``) instead of in SQLite's busy handler, which sleeps. One
        lock per event loop (a lock belongs to the loop it first waited on)."""
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, asyncio.Lock())
        return self._writer[1]

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
