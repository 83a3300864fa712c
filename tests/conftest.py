"""Shared fixtures: a database URL on SQLite and on PostgreSQL, and a migrated ``Database``.

Every test runs with ``ROUTERBOT_MODEL_SETTINGS`` pinned to ``tests/fixtures`` (the models the
tests name), unless it passes its own settings file.

PostgreSQL tests each get a fresh database (``rb_test_<hex>``) on the local server, dropped
afterwards. If the server is unreachable they are skipped with the reason, except under
``CI=true``, where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from storage.db import Database
from storage.migrate import upgrade
from tests.fixtures import PINNED_MODEL_SETTINGS

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
POSTGRES_ADMIN_URL = f"{POSTGRES_SERVER}/test"

# Remembered after the first failed connection so every later test skips at once.
_postgres_unreachable: str | None = None


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _postgres_unavailable(reason: str) -> NoReturn:
    if _under_ci():
        pytest.fail(f"PostgreSQL is required when CI=true but is unreachable: {reason}")
    pytest.skip(f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL} ({reason}); start it to run")


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test; yields its URL and drops it after."""
    import asyncpg

    global _postgres_unreachable
    if _postgres_unreachable is not None:
        _postgres_unavailable(_postgres_unreachable)
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        _postgres_unreachable = f"{type(exc).__name__}: {exc}"
        _postgres_unavailable(_postgres_unreachable)
    name = f"rb_test_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES_SERVER}/{name}"
        finally:
            # FORCE: a test that failed mid-way may have left a connection open.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database (not migrated), on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'routerbot.db'}"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A ``Database`` migrated to head, disposed after the test."""
    await upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(scope="session", autouse=True)
def _pinned_model_settings() -> Iterator[None]:
    """The recommendations the tests were written against, whatever the shipped file says."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERBOT_MODEL_SETTINGS", str(PINNED_MODEL_SETTINGS))
        yield


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    """Retries keep their attempt counts but never wait: no test sleeps on a backoff."""
    import stamina

    with stamina.set_testing(True, attempts=10, cap=True):
        yield
