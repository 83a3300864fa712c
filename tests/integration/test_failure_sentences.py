"""Which sentence an unexpected failure gets: the database's own only for a database that is
unreachable for now, the generic one for everything else (a socket error talking to Slack is
not a database outage)."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import text

from bot.core.dispatch import DATABASE_UNAVAILABLE, INTERNAL_ERROR, failure_sentence
from storage.db import Database


async def _failure_of(work: object) -> BaseException:
    try:
        await work  # type: ignore[misc]
    except Exception as exc:
        return exc
    raise AssertionError("expected a failure")


async def _query(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))


async def test_an_unreachable_postgresql_is_a_database_outage() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/routerbot")
    try:
        exc = await _failure_of(_query(db))
    finally:
        await db.dispose()
    assert failure_sentence(exc) == DATABASE_UNAVAILABLE


async def test_a_refused_http_connection_is_not_a_database_outage() -> None:
    async with aiohttp.ClientSession() as http:
        exc = await _failure_of(http.get("http://127.0.0.1:1/"))
    assert isinstance(exc, OSError)  # what makes it look transient
    assert failure_sentence(exc) == INTERNAL_ERROR


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("x"), None])
def test_anything_else_is_the_generic_sentence(exc: BaseException | None) -> None:
    assert failure_sentence(exc) == INTERNAL_ERROR
