"""The journal of answers in flight, on both backends: written in batches, never for answers
that end between two writes, swept by exactly one live process once the owner's heartbeat is
stale, and safe against an answer ending while its row is being written."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.inflight import AnswerJournal
from storage import inflight as store
from storage.db import Database
from storage.models import AnswerInFlight
from storage.sql_store import SqlStore

START = datetime(2026, 11, 25, 12, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def journal(db: Database, clock: Clock, finished: list[dict[str, Any]]) -> AnswerJournal:
    async def finish(target: dict[str, Any]) -> None:
        finished.append(target)

    return AnswerJournal(
        SqlStore(db), platform="slack", finish=finish, interval=1, stale=30, clock=clock
    )


async def rows(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(AnswerInFlight)) or 0)


async def test_short_answers_are_never_written_long_ones_are_until_they_end(db: Database) -> None:
    clock, finished = Clock(), []
    j = journal(db, clock, finished)
    quick = j.begin({"channel": "C1", "edit": "1.0"})
    j.end(quick)
    await j.flush()
    assert await rows(db) == 0
    long = j.begin({"channel": "C1", "edit": "2.0"})
    await j.flush()
    assert await rows(db) == 1 and j.in_flight == 1
    j.end(long)
    await j.flush()
    assert await rows(db) == 0 and j.in_flight == 0
    assert finished == []


async def test_a_dead_owners_answers_are_finished_once_by_one_live_process(db: Database) -> None:
    clock = Clock()
    dead_finished: list[dict[str, Any]] = []
    dead = journal(db, clock, dead_finished)
    targets = [{"team": "T1", "channel": "C1", "edit": f"{i}.0"} for i in range(3)]
    for target in targets:
        dead.begin(target)
    await dead.flush()  # then the process dies: no more heartbeats

    b_done: list[dict[str, Any]] = []
    c_done: list[dict[str, Any]] = []
    b, c = journal(db, clock, b_done), journal(db, clock, c_done)
    clock.advance(29)
    assert await b.sweep() == 0  # the heartbeat is still fresh
    clock.advance(2)
    await asyncio.gather(b.sweep(), c.sweep())
    assert sorted(b_done + c_done, key=lambda t: t["edit"]) == targets
    assert await rows(db) == 0
    assert dead_finished == []


async def test_a_live_owners_heartbeat_keeps_its_answers(db: Database) -> None:
    clock, finished = Clock(), []
    live = journal(db, clock, finished)
    live.begin({"channel": "C1", "edit": "1.0"})
    await live.flush()
    other_finished: list[dict[str, Any]] = []
    other = journal(db, clock, other_finished)
    for _ in range(5):
        clock.advance(20)
        await live.flush()  # the heartbeat
        assert await other.sweep() == 0
    assert other_finished == [] and await rows(db) == 1


async def test_an_answer_ending_while_its_row_is_written_is_deleted(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, finished = Clock(), []
    j = journal(db, clock, finished)
    token = j.begin({"channel": "C1", "edit": "1.0"})
    record = store.record_answers

    async def record_then_end(*args: Any, **kwargs: Any) -> list[int]:
        ids = await record(*args, **kwargs)
        j.end(token)  # the answer ends while the transaction is still open
        return ids

    monkeypatch.setattr(store, "record_answers", record_then_end)
    await j.flush()
    assert j.in_flight == 0
    monkeypatch.setattr(store, "record_answers", record)
    await j.flush()
    assert await rows(db) == 0


async def test_a_failed_write_is_tried_again(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, finished = Clock(), []
    j = journal(db, clock, finished)
    j.begin({"channel": "C1", "edit": "1.0"})

    async def unreachable(*_args: Any, **_kwargs: Any) -> list[int]:
        raise OSError("connection refused")

    record = store.record_answers
    monkeypatch.setattr(store, "record_answers", unreachable)
    with pytest.raises(OSError):
        await j.flush()
    monkeypatch.setattr(store, "record_answers", record)
    await j.flush()
    assert await rows(db) == 1 and j.in_flight == 1
