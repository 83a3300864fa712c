"""Whole transactions of Core statements (``storage.thread_tx``) and the chat path's two
transactions built on them, on SQLite (one thread hand-off) and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import Database, is_database_outage, is_transient
from storage.models import ProviderKey, UsageRecord, Workspace
from storage.records import FlightEntry, NewModel, TurnWrite, UsageEntry
from storage.sql_store import SqlStore
from storage.stores.conversations import ConversationNotFoundError
from storage.thread_tx import SyncTx, run_transaction

_workspace = Workspace.__table__  # type: ignore[attr-defined]
_keys = ProviderKey.__table__  # type: ignore[attr-defined]
NOON = datetime(2026, 3, 10, 12, 0, 0, 123456)

_ADD_WORKSPACE = insert(_workspace).values(
    platform=bindparam("platform"),
    external_id=bindparam("external_id"),
    name=bindparam("name"),
    default_model=bindparam("default_model"),
    created_at=bindparam("created_at"),
)
_WORKSPACES = select(_workspace.c.id, _workspace.c.external_id, _workspace.c.created_at).order_by(
    _workspace.c.id
)


def _add(tx: SyncTx, external_id: str, *, fail: bool = False) -> int:
    count = tx.run(
        _ADD_WORKSPACE,
        {
            "platform": "slack",
            "external_id": external_id,
            "name": None,
            "default_model": None,
            "created_at": NOON,
        },
    )
    if fail:
        raise RuntimeError("the work failed after its insert")
    return count


async def test_rows_and_types_come_back_as_sqlalchemy_gives_them(db: Database) -> None:
    assert await run_transaction(db, lambda tx: _add(tx, "T1"), write=True) == 1
    rows = await run_transaction(db, lambda tx: tx.rows(_WORKSPACES), write=False)
    assert [(external, created) for _id, external, created in rows] == [("T1", NOON)]
    async with db.session() as session:
        via_orm = (await session.execute(_WORKSPACES)).all()
    assert [tuple(r) for r in via_orm] == [tuple(r) for r in rows]


async def test_work_that_raises_rolls_the_whole_transaction_back(db: Database) -> None:
    with pytest.raises(RuntimeError, match="failed after its insert"):
        await run_transaction(db, lambda tx: _add(tx, "T1", fail=True), write=True)
    assert await run_transaction(db, lambda tx: tx.rows(_WORKSPACES), write=False) == []


async def test_a_constraint_violation_is_sqlalchemys_error_and_not_transient(db: Database) -> None:
    await run_transaction(db, lambda tx: _add(tx, "T1"), write=True)
    with pytest.raises(IntegrityError) as raised:
        await run_transaction(db, lambda tx: _add(tx, "T1"), write=True)
    assert not is_transient(raised.value)
    assert len(await run_transaction(db, lambda tx: tx.rows(_WORKSPACES), write=False)) == 1


async def test_a_locked_sqlite_file_is_a_transient_outage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(text("PRAGMA busy_timeout=50"))
        await conn.run_sync(lambda sync: Workspace.__table__.create(sync))  # type: ignore[attr-defined]
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # The engine's connections wait 5 s on a lock; this one is told to give up sooner.
        db.engine.sync_engine.pool.dispose()
        event.listen(
            db.engine.sync_engine,
            "connect",
            lambda conn, _rec: conn.driver_connection._conn.execute("PRAGMA busy_timeout=50"),
        )
        with pytest.raises(OperationalError) as raised:
            await run_transaction(db, lambda tx: _add(tx, "T1"), write=True)
        assert is_transient(raised.value)
        assert is_database_outage(raised.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await db.dispose()


async def test_sqlite_runs_a_transaction_in_one_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: Workspace.__table__.create(sync))  # type: ignore[attr-defined]
    seen: list[object] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(fn)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)

    def three(tx: SyncTx) -> int:
        _add(tx, "T1")
        _add(tx, "T2")
        return len(tx.rows(_WORKSPACES))

    assert await run_transaction(db, three, write=True) == 2
    assert len(seen) == 1
    await db.dispose()


async def test_a_cancelled_callers_transaction_still_ends_whole_and_frees_its_connection(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cancel.db'}", pool_size=1, max_overflow=0)
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: Workspace.__table__.create(sync))  # type: ignore[attr-defined]
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(tx: SyncTx) -> int:
        loop.call_soon_threadsafe(started.set)
        _add(tx, "T1")
        time.sleep(0.2)
        return 1

    task = asyncio.create_task(run_transaction(db, slow, write=True))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The work ran to its commit on its thread; the one pooled connection is free again.
    rows = await asyncio.wait_for(
        run_transaction(db, lambda tx: tx.rows(_WORKSPACES), write=False), 5
    )
    assert [external for _id, external, _at in rows] == ["T1"]
    await db.dispose()


# --- the chat path's two transactions ------------------------------------------------------


async def _workspace_with_model(store: SqlStore, external_id: str = "T1") -> int:
    async with store.transaction() as tx:
        ws, _created = await tx.workspaces.get_or_create(
            platform="slack", external_id=external_id, name=None
        )
        await tx.workspaces.set_default_model(ws.id, "openai/gpt-4o-mini")
        await tx.allowlist.add(
            ws.id, NewModel("openrouter", "openai/gpt-4o-mini", 150_000_000, 600_000_000, None)
        )
        await tx.keys.set(
            ws.id, provider="openrouter", ciphertext=b"sealed", masked="sk-or-…0000", set_by="U0"
        )
        return ws.id


def _usage(ws: int, **changes: object) -> UsageEntry:
    values: dict[str, object] = dict(
        workspace_id=ws,
        channel_id="C1",
        user_id="U1",
        provider="openrouter",
        model_requested="openai/gpt-4o-mini",
        model_served="openai/gpt-4o-mini",
        prompt_tokens=10,
        cached_tokens=0,
        completion_tokens=5,
        reasoning_tokens=0,
        cost_nano=1_000,
        cost_source="reported",
        generation_id="gen-1",
        latency_ms=100,
        outcome="ok",
        error_kind=None,
        conversation_id=None,
        created_at=NOON,
    )
    values.update(changes)
    return UsageEntry(**values)  # type: ignore[arg-type]


def _turn(ws: int, **changes: object) -> TurnWrite:
    values: dict[str, object] = dict(
        conversation_id=None,
        channel_id="C1",
        user_id="U1",
        provider="openrouter",
        model="openai/gpt-4o-mini",
        messages=(("user", "hi"), ("assistant", "hello")),
        anchors=("C1:1.0", "C1:1.0"),
        usage=_usage(ws),
        flight_row=None,
        owner="me",
    )
    values.update(changes)
    return TurnWrite(**values)  # type: ignore[arg-type]


async def test_read_chat_reads_policy_model_key_history_and_limits(db: Database) -> None:
    store = SqlStore(db)
    ws = await _workspace_with_model(store)
    read = await store.read_chat(
        ws,
        channel_id="C1",
        user_id="U1",
        model_id=None,
        conversation_id=None,
        history_limit=50,
        with_limits=True,
    )
    assert read.model_id == "openai/gpt-4o-mini"
    assert read.model is not None and read.model.input_nano_per_1m == 150_000_000
    assert read.key is not None and read.key.ciphertext == b"sealed"
    assert read.history == () and read.has_limits is False

    written = await store.write_turn(_turn(ws))
    assert written.owned and written.conversation_id is not None
    followed = await store.read_chat(
        ws,
        channel_id="C1",
        user_id="U1",
        model_id="someone/unknown",
        conversation_id=written.conversation_id,
        history_limit=1,
        with_limits=False,
    )
    assert followed.model is None and followed.key is None and followed.has_limits is None
    assert [(m.role, m.content) for m in followed.history] == [("assistant", "hello")]

    other = await _workspace_with_model(store, "T2")
    theirs = await store.read_chat(
        other,
        channel_id="C1",
        user_id="U1",
        model_id=None,
        conversation_id=written.conversation_id,
        history_limit=50,
        with_limits=False,
    )
    assert theirs.history == ()  # another workspace's conversation reads as empty


async def test_write_turn_writes_once_releases_its_flight_and_keeps_tenants_apart(
    db: Database,
) -> None:
    store = SqlStore(db)
    ws = await _workspace_with_model(store)
    at = NOON
    flight = FlightEntry(ws, "C1", "U1", "openrouter", "openai/gpt-4o-mini", "gen-1", "me",
                         at, at, 10, 0, None)  # fmt: skip
    [row] = await store.put_in_flight([flight], release=[], owner="me")

    first = await store.write_turn(_turn(ws, flight_row=row))
    assert first.owned
    # A retry after a lost acknowledgement finds the generation's row and writes nothing.
    again = await store.write_turn(_turn(ws, flight_row=row, check_generation=True))
    assert again.conversation_id == first.conversation_id
    async with db.session() as session:
        rows = (await session.execute(select(UsageRecord.id))).all()  # type: ignore[call-overload]
    assert len(rows) == 1

    # A lease that lapsed (the row is gone or another owner's): the turn, not the usage.
    lapsed = await store.write_turn(_turn(ws, flight_row=row, usage=_usage(ws, generation_id="g2")))
    assert not lapsed.owned
    async with store.transaction() as tx:
        summary = await tx.usage.summarize(ws, channel_id="C1", since=None, until=None)
    assert summary.totals.chats == 1 and summary.totals.cost_nano == 1_000

    # An unknown cost goes back in flight with its usage row, for the settler.
    unknown = await store.write_turn(
        _turn(ws, usage=_usage(ws, generation_id="g3", cost_nano=None), settle=flight)
    )
    assert unknown.owned
    async with store.transaction() as tx:
        later = NOON + timedelta(minutes=1)
        claimed = await tx.flights.claim("settler", now=later, until=later, limit=10)
    assert [c.usage_id is not None for c in claimed] == [True]

    other = await _workspace_with_model(store, "T2")
    with pytest.raises(ConversationNotFoundError):
        await store.write_turn(
            _turn(other, conversation_id=first.conversation_id, usage=_usage(other))
        )


async def test_a_delivery_is_claimed_once_across_stores(db: Database) -> None:
    first, second = SqlStore(db), SqlStore(Database(str(db.engine.url)))
    try:
        claims = await asyncio.gather(
            *(store.claim_event("slack", "T1:trigger-1") for store in (first, second, first))
        )
        assert sorted(claims) == [False, False, True]
        assert await first.claim_event("discord", "T1:trigger-1")  # platforms apart
    finally:
        await second.db.dispose()


async def test_rows_in_flight_come_back_in_order_and_stale_ones_are_released(
    db: Database,
) -> None:
    store = SqlStore(db)
    ws = await _workspace_with_model(store)

    def entry(generation: str, owner: str = "me") -> FlightEntry:
        return FlightEntry(ws, "C1", "U1", "openrouter", "openai/gpt-4o-mini", generation,
                           owner, NOON, NOON, 10, 0, None)  # fmt: skip

    ids = await store.put_in_flight([entry(f"g{n}") for n in range(5)], release=[], owner="me")
    assert len(ids) == 5 and ids == sorted(ids)
    theirs = await store.put_in_flight([entry("x", owner="them")], release=[], owner="them")
    again = await store.put_in_flight([entry("g0-again")], release=[ids[0], theirs[0]], owner="me")
    later = NOON + timedelta(minutes=1)
    async with store.transaction() as tx:
        rows = await tx.flights.claim("settler", now=later, until=later, limit=20)
    generations = sorted(row.generation_id or "" for row in rows)
    # Only this owner's own stale row went; the other owner's is still on record.
    assert generations == ["g0-again", "g1", "g2", "g3", "g4", "x"]
    assert again[0] not in ids


async def test_a_process_writes_in_turn_and_never_waits_in_sqlites_busy_handler(
    tmp_path: Path,
) -> None:
    """With no busy timeout at all, fifty concurrent writes still all land: they queue in the
    process, not on SQLite's lock (whose handler waits by sleeping)."""
    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: Workspace.__table__.create(sync))  # type: ignore[attr-defined]
    db.engine.sync_engine.pool.dispose()
    event.listen(
        db.engine.sync_engine,
        "connect",
        lambda conn, _rec: conn.driver_connection._conn.execute("PRAGMA busy_timeout=0"),
    )

    def slow_add(tx: SyncTx, n: int) -> int:
        count = _add(tx, f"T{n}")
        time.sleep(0.002)  # the write lock is held a little while
        return count

    counts = await asyncio.gather(
        *(run_transaction(db, lambda tx, n=n: slow_add(tx, n), write=True) for n in range(50))
    )
    assert counts == [1] * 50
    assert len(await run_transaction(db, lambda tx: tx.rows(_WORKSPACES), write=False)) == 50
    await db.dispose()
