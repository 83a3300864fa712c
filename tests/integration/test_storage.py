"""Storage on SQLite and PostgreSQL: migrations, tenant isolation, concurrency, exact money."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from storage import migrate
from storage import stores as s
from storage.crypto import KeyVault, generate_key, mask_key
from storage.db import Database
from storage.models import UsageRecord, Workspace
from tests.ledger_oracle import expected_groups, expected_totals

# --------------------------------------------------------------------------- migrations


async def test_migrations_from_empty_to_head(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    database = Database(database_url)
    try:
        assert await migrate.current_revision(database.engine) is None
        await migrate.ensure_schema(database)
        assert await migrate.current_revision(database.engine) == migrate.HEAD

        # The hand-written revision creates exactly what the models describe.
        async with database.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync_conn: compare_metadata(
                    MigrationContext.configure(sync_conn, opts={"compare_type": True}),
                    SQLModel.metadata,
                )
            )
        assert diff == []
    finally:
        await database.dispose()


async def test_ensure_schema_is_a_no_op_at_head(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def must_not_upgrade(*_args: object) -> None:
        raise AssertionError("ensure_schema ran an upgrade on an up-to-date database")

    monkeypatch.setattr(migrate, "_upgrade_engine", must_not_upgrade)
    await migrate.ensure_schema(db)
    await migrate.ensure_schema(db)
    assert await migrate.current_revision(db.engine) == migrate.HEAD


async def test_downgrade_to_base_and_back(db: Database) -> None:
    from alembic import command

    async with db.engine.connect() as conn:
        await conn.run_sync(
            lambda c: command.downgrade(migrate.alembic_config(connection=c), "base")
        )
        await conn.commit()
    assert await migrate.current_revision(db.engine) is None
    await migrate.ensure_schema(db)
    assert await migrate.current_revision(db.engine) == migrate.HEAD


def test_head_constant_matches_alembic() -> None:
    assert migrate.head_revision() == migrate.HEAD


async def test_concurrent_upgrades(database_url: str) -> None:
    # Several workers starting at once on an empty database: all succeed, one migrates.
    await asyncio.gather(*(migrate.upgrade(database_url) for _ in range(3)))
    database = Database(database_url)
    try:
        assert await migrate.current_revision(database.engine) == migrate.HEAD
        async with database.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert versions == [(migrate.HEAD,)]
    finally:
        await database.dispose()


def test_ensure_schema_at_head_is_fast_and_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fast.db'}"
    # A fresh interpreter: the point is what start-up imports and how long it takes.
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from storage.db import Database
        from storage.migrate import ensure_schema, upgrade

        asyncio.run(upgrade({url!r}))
        for name in [m for m in sys.modules if m == "alembic" or m.startswith("alembic.")]:
            del sys.modules[name]

        async def main():
            db = Database({url!r})
            started = time.perf_counter()
            await ensure_schema(db)
            elapsed = time.perf_counter() - started
            await db.dispose()
            return elapsed

        elapsed = asyncio.run(main())
        print(elapsed, any(m == "alembic" or m.startswith("alembic.") for m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    elapsed, imported_alembic = out.stdout.split()
    assert imported_alembic == "False"
    assert float(elapsed) < 0.5


# --------------------------------------------------------------------------- workspaces


async def test_get_or_create_workspace(db: Database) -> None:
    async with db.session() as session:
        ws, created = await s.get_or_create_workspace(
            session, platform="slack", external_id="T1", name="Acme"
        )
        assert created
        assert ws.id is not None
        assert ws.name == "Acme"
        assert ws.created_at.tzinfo is None
        again, created_again = await s.get_or_create_workspace(
            session, platform="slack", external_id="T1"
        )
        assert (again.id, created_again) == (ws.id, False)
    async with db.session() as session:
        assert (await s.get_workspace(session, platform="slack", external_id="T1")) is not None
        assert (await s.get_workspace(session, platform="discord", external_id="T1")) is None
        assert (await s.get_workspace_by_id(session, workspace_id=ws.id)) is not None
        assert (await s.get_workspace_by_id(session, workspace_id=ws.id + 1000)) is None


async def test_get_or_create_workspace_is_race_safe(db: Database) -> None:
    async def one() -> tuple[int | None, bool]:
        async with db.session() as session:
            ws, created = await s.get_or_create_workspace(
                session, platform="discord", external_id="G42", name="guild"
            )
            return ws.id, created

    results = await asyncio.gather(*(one() for _ in range(20)))
    assert len({ws_id for ws_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    async with db.session() as session:
        count = await session.scalar(select(func.count()).select_from(Workspace))
    assert count == 1


async def test_find_workspaces_across_platforms(db: Database) -> None:
    async with db.session() as session:
        slack, _ = await s.get_or_create_workspace(session, platform="slack", external_id="X1")
        discord, _ = await s.get_or_create_workspace(session, platform="discord", external_id="X1")
        await s.get_or_create_workspace(session, platform="slack", external_id="X2")
        both = await s.find_workspaces(session, external_id="X1")
        assert [w.id for w in both] == [discord.id, slack.id]  # ordered by platform
        only = await s.find_workspaces(session, external_id="X1", platform="slack")
        assert [w.id for w in only] == [slack.id]
        assert await s.find_workspaces(session, external_id="nope") == []


# --------------------------------------------------------------------------- allowlist


async def _workspace(session: AsyncSession, external_id: str, platform: str = "slack") -> int:
    ws, _ = await s.get_or_create_workspace(session, platform=platform, external_id=external_id)
    assert ws.id is not None
    return ws.id


async def test_models_upsert_bulk_order_and_default(db: Database) -> None:
    async with db.session() as session:
        ws = await _workspace(session, "T-models")
        await s.add_models_bulk(
            session,
            workspace_id=ws,
            models=[
                s.NewModel("openrouter", f"author/model-{i}", 1_000 * i, 2_000 * i, None)
                for i in (3, 1, 2)
            ],
        )
        await s.add_models_bulk(session, workspace_id=ws, models=[])
        ids = [m.model_id for m in await s.list_models(session, workspace_id=ws)]
        assert ids == ["author/model-3", "author/model-1", "author/model-2"]  # seeding order

        # Re-seeding leaves existing rows alone; add_model refreshes the pricing.
        await s.add_models_bulk(
            session,
            workspace_id=ws,
            models=[s.NewModel("openrouter", "author/model-1", 9, 9, 9)],
        )
        assert (await s.get_model(session, workspace_id=ws, model_id="author/model-1")) is not None
        model = await s.get_model(session, workspace_id=ws, model_id="author/model-1")
        assert model is not None
        assert model.input_nano_per_1m == 1_000
        updated = await s.add_model(
            session,
            workspace_id=ws,
            provider="openrouter",
            model_id="author/model-1",
            input_nano_per_1m=3_000_000_000,
            output_nano_per_1m=15_000_000_000,
            cached_input_nano_per_1m=300_000_000,
            added_by="U2",
        )
        assert updated.input_nano_per_1m == 3_000_000_000
        assert updated.cached_input_nano_per_1m == 300_000_000
        ids = [m.model_id for m in await s.list_models(session, workspace_id=ws)]
        assert ids == ["author/model-3", "author/model-1", "author/model-2"]

        await s.set_default_model(session, workspace_id=ws, model_id="author/model-2")
        workspace = await s.get_workspace_by_id(session, workspace_id=ws)
        assert workspace is not None
        assert workspace.default_model == "author/model-2"
        assert await s.remove_model(session, workspace_id=ws, model_id="author/model-2")
        assert not await s.remove_model(session, workspace_id=ws, model_id="author/model-2")
    async with db.session() as session:
        workspace = await s.get_workspace_by_id(session, workspace_id=ws)
        assert workspace is not None
        assert workspace.default_model is None  # removing the default clears it


# --------------------------------------------------------------------------- keys


async def test_keys_round_trip_and_rotation(db: Database) -> None:
    old_key, new_key = generate_key(), generate_key()
    old_vault = KeyVault.from_config(old_key)
    api_key = "sk-or-v1-" + uuid.uuid4().hex * 2
    async with db.session() as session:
        ws = await _workspace(session, "T-keys")
        await s.set_key(
            session,
            workspace_id=ws,
            provider="openrouter",
            ciphertext=old_vault.encrypt(SecretStr(api_key)),
            masked=mask_key(api_key),
            set_by="U1",
        )
    rotating = KeyVault.from_config(f"{new_key},{old_key}")
    async with db.session() as session:
        assert await s.rotate_keys(session, vault=rotating) == 1
    async with db.session() as session:
        stored = await s.get_key(session, workspace_id=ws, provider="openrouter")
        assert stored is not None
        assert stored.masked == mask_key(api_key)
        only_new = KeyVault.from_config(new_key)
        assert only_new.decrypt(stored.ciphertext).get_secret_value() == api_key
        assert await s.delete_key(session, workspace_id=ws, provider="openrouter")
        assert not await s.delete_key(session, workspace_id=ws, provider="openrouter")
        assert await s.get_key(session, workspace_id=ws, provider="openrouter") is None


async def test_set_key_replaces(db: Database) -> None:
    async with db.session() as session:
        ws = await _workspace(session, "T-replace")
        for value in (b"first", b"second"):
            await s.set_key(
                session,
                workspace_id=ws,
                provider="fireworks",
                ciphertext=value,
                masked="fw_…" + value.decode()[-2:],
                set_by=None,
            )
        stored = await s.get_key(session, workspace_id=ws, provider="fireworks")
        assert stored is not None
        assert (stored.ciphertext, stored.masked) == (b"second", "fw_…nd")


async def test_plain_key_is_nowhere_in_the_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    await migrate.upgrade(url)
    database = Database(url)
    api_key = "sk-or-v1-" + uuid.uuid4().hex + uuid.uuid4().hex
    vault = KeyVault.from_config(generate_key())
    try:
        async with database.session() as session:
            ws = await _workspace(session, "T-file")
            await s.set_key(
                session,
                workspace_id=ws,
                provider="openrouter",
                ciphertext=vault.encrypt(SecretStr(api_key)),
                masked=mask_key(api_key),
                set_by="U1",
            )

        def file_bytes() -> bytes:
            return b"".join(
                path.read_bytes()
                for path in tmp_path.iterdir()
                if path.name.startswith("keys.db")  # the database, its -wal and -shm
            )

        secret_parts = (api_key.encode(), api_key[9:-4].encode(), api_key[9:25].encode())
        before = file_bytes()
        assert any(path.name == "keys.db-wal" for path in tmp_path.iterdir())
        assert not any(part in before for part in secret_parts)

        async with database.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        after = file_bytes()
        assert mask_key(api_key).encode() in after  # the row really is on disk
        assert not any(part in after for part in secret_parts)

        async with database.session() as session:
            stored = await s.get_key(session, workspace_id=ws, provider="openrouter")
            assert stored is not None
            assert vault.decrypt(stored.ciphertext).get_secret_value() == api_key
    finally:
        await database.dispose()


# --------------------------------------------------------------------------- conversations


async def test_conversation_messages_and_anchors(db: Database) -> None:
    async with db.session() as session:
        ws = await _workspace(session, "T-conv")
        conv = await s.create_conversation(
            session,
            workspace_id=ws,
            channel_id="C1",
            user_id="U1",
            provider="openrouter",
            model="author/model",
        )
        assert conv.id is not None
        for i in range(7):
            await s.add_message(
                session,
                workspace_id=ws,
                conversation_id=conv.id,
                role="user" if i % 2 == 0 else "assistant",
                content=f"m{i}",
            )
        await s.add_anchor(
            session, workspace_id=ws, anchor="1700000000.0001", conversation_id=conv.id
        )
        await s.add_anchor(
            session, workspace_id=ws, anchor="1700000000.0001", conversation_id=conv.id
        )
    async with db.session() as session:
        last = await s.get_messages(session, workspace_id=ws, conversation_id=conv.id, limit=3)
        assert [m.content for m in last] == ["m4", "m5", "m6"]
        every = await s.get_messages(session, workspace_id=ws, conversation_id=conv.id)
        assert [m.content for m in every] == [f"m{i}" for i in range(7)]
        assert (
            await s.get_messages(session, workspace_id=ws, conversation_id=conv.id, limit=0) == []
        )
        found = await s.find_conversation_by_anchor(
            session, workspace_id=ws, anchor="1700000000.0001"
        )
        assert found is not None
        assert found.id == conv.id
        assert await s.find_conversation_by_anchor(session, workspace_id=ws, anchor="nope") is None
        fetched = await s.get_conversation(session, workspace_id=ws, conversation_id=conv.id)
        assert fetched is not None
        assert fetched.model == "author/model"


# --------------------------------------------------------------------------- isolation


async def test_workspaces_never_see_each_other(db: Database) -> None:
    vault = KeyVault.from_config(generate_key())
    async with db.session() as session:
        a = await _workspace(session, "SAME", platform="slack")
        b = await _workspace(session, "SAME", platform="discord")

        for ws, price in ((a, 1), (b, 2)):
            await s.add_model(
                session,
                workspace_id=ws,
                provider="openrouter",
                model_id="shared/model",
                input_nano_per_1m=price,
                output_nano_per_1m=price,
                cached_input_nano_per_1m=None,
            )
        await s.add_models_bulk(
            session, workspace_id=b, models=[s.NewModel("openrouter", "b/only", 5, 5, None)]
        )
        await s.set_default_model(session, workspace_id=b, model_id="b/only")
        await s.set_key(
            session,
            workspace_id=b,
            provider="openrouter",
            ciphertext=vault.encrypt(SecretStr("sk-or-v1-bbbbbbbbbbbbbbbbbbbbbbbb")),
            masked="sk-or-v1-…bbbb",
            set_by="UB",
        )
        conv_b = await s.create_conversation(
            session,
            workspace_id=b,
            channel_id="CB",
            user_id="UB",
            provider="openrouter",
            model="b/only",
        )
        conv_a = await s.create_conversation(
            session,
            workspace_id=a,
            channel_id="CA",
            user_id="UA",
            provider="openrouter",
            model="shared/model",
        )
        assert conv_a.id is not None
        assert conv_b.id is not None
        await s.add_message(
            session, workspace_id=b, conversation_id=conv_b.id, role="user", content="secret b"
        )
        await s.add_anchor(session, workspace_id=b, anchor="anchor-1", conversation_id=conv_b.id)
        await s.add_anchor(session, workspace_id=a, anchor="anchor-1", conversation_id=conv_a.id)
        await s.add_anchor(session, workspace_id=b, anchor="b-anchor", conversation_id=conv_b.id)
        await s.record_usage(
            session,
            record=UsageRecord(
                workspace_id=b,
                channel_id="CB",
                user_id="UB",
                provider="openrouter",
                model_requested="b/only",
                cost_nano=123,
                cost_source="reported",
                outcome="ok",
            ),
        )

    async with db.session() as session:
        # Allowlist and default.
        assert [m.model_id for m in await s.list_models(session, workspace_id=a)] == [
            "shared/model"
        ]
        model_a = await s.get_model(session, workspace_id=a, model_id="shared/model")
        assert model_a is not None
        assert model_a.input_nano_per_1m == 1
        assert await s.get_model(session, workspace_id=a, model_id="b/only") is None
        assert not await s.remove_model(session, workspace_id=a, model_id="b/only")
        ws_a = await s.get_workspace_by_id(session, workspace_id=a)
        assert ws_a is not None
        assert ws_a.default_model is None

        # Keys.
        assert await s.get_key(session, workspace_id=a, provider="openrouter") is None
        assert not await s.delete_key(session, workspace_id=a, provider="openrouter")

        # Conversations, messages, anchors.
        assert await s.get_conversation(session, workspace_id=a, conversation_id=conv_b.id) is None
        assert await s.get_messages(session, workspace_id=a, conversation_id=conv_b.id) == []
        with pytest.raises(s.ConversationNotFoundError):
            await s.add_message(
                session, workspace_id=a, conversation_id=conv_b.id, role="user", content="x"
            )
        with pytest.raises(s.ConversationNotFoundError):
            await s.add_anchor(session, workspace_id=a, anchor="hijack", conversation_id=conv_b.id)
        assert (
            await s.find_conversation_by_anchor(session, workspace_id=a, anchor="b-anchor") is None
        )
        same = await s.find_conversation_by_anchor(session, workspace_id=a, anchor="anchor-1")
        assert same is not None
        assert same.id == conv_a.id

        # Usage.
        summary = await s.summarize_usage(
            session, workspace_id=a, channel_id=None, since=None, until=None
        )
        assert summary.totals == s.UsageTotals(0, 0, 0, 0, 0, 0, 0, 0)
        assert summary.by_model == summary.by_user == summary.by_channel == []
        assert await s.list_usage(session, workspace_id=a) == []

    async with db.session() as session:
        # B still has everything A tried to touch.
        assert [m.model_id for m in await s.list_models(session, workspace_id=b)] == [
            "shared/model",
            "b/only",
        ]
        ws_b = await s.get_workspace_by_id(session, workspace_id=b)
        assert ws_b is not None
        assert ws_b.default_model == "b/only"
        assert await s.get_key(session, workspace_id=b, provider="openrouter") is not None
        messages = await s.get_messages(session, workspace_id=b, conversation_id=conv_b.id)
        assert [m.content for m in messages] == ["secret b"]
        assert len(await s.list_usage(session, workspace_id=b)) == 1
        summary_b = await s.summarize_usage(
            session, workspace_id=b, channel_id=None, since=None, until=None
        )
        assert summary_b.totals.cost_nano == 123


# --------------------------------------------------------------------------- usage


async def test_record_usage_requires_a_workspace(db: Database) -> None:
    async with db.session() as session:
        record = UsageRecord(  # type: ignore[call-arg]  # the point of the test
            channel_id="C", user_id="U", provider="p", model_requested="m", outcome="ok"
        )
        with pytest.raises(ValueError, match="workspace_id"):
            await s.record_usage(session, record=record)


async def test_summary_filters_by_channel_and_time(db: Database) -> None:
    base = datetime(2026, 3, 1)
    async with db.session() as session:
        ws = await _workspace(session, "T-time")
        for days, channel, cost in ((0, "C1", 10), (5, "C1", 20), (5, "C2", 40), (40, "C1", 80)):
            await s.record_usage(
                session,
                record=UsageRecord(
                    workspace_id=ws,
                    channel_id=channel,
                    user_id="U",
                    provider="openrouter",
                    model_requested="m",
                    cost_nano=cost,
                    cost_source="reported",
                    outcome="ok",
                    created_at=base + timedelta(days=days),
                ),
            )
    async with db.session() as session:

        async def total(**kwargs: object) -> int:
            params: dict[str, object] = {"channel_id": None, "since": None, "until": None}
            params.update(kwargs)
            summary = await s.summarize_usage(session, workspace_id=ws, **params)  # type: ignore[arg-type]
            return summary.totals.cost_nano

        assert await total() == 150
        assert await total(channel_id="C1") == 110
        assert await total(since=base, until=base + timedelta(days=30)) == 70
        # Aware datetimes are accepted and converted to naive UTC.
        assert await total(since=(base + timedelta(days=5)).replace(tzinfo=UTC)) == 140
        assert await total(until=base) == 0
        exported = await s.list_usage(session, workspace_id=ws, since=base + timedelta(days=1))
        assert [r.cost_nano for r in exported] == [20, 40, 80]


outcomes = st.sampled_from(["ok", "ok", "cut_off", "error", "cancelled"])
usage_rows = st.fixed_dictionaries(
    {
        "channel_id": st.sampled_from(["C1", "C2", "c3"]),
        "user_id": st.sampled_from(["U1", "U2", "u3"]),
        "model_requested": st.sampled_from(["a/m1", "b/m2"]),
        "model_served": st.one_of(st.none(), st.sampled_from(["a/m1", "a/m1-2025", "z/m"])),
        "prompt_tokens": st.integers(0, 2_000_000),
        "cached_tokens": st.integers(0, 1_000_000),
        "completion_tokens": st.integers(0, 2_000_000),
        # Beyond 2**53: any float on the way would lose cents.
        "cost_nano": st.one_of(st.none(), st.integers(0, 2**56)),
        "cost_source": st.sampled_from(["reported", "computed", "unknown"]),
        "outcome": outcomes,
    }
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(usage_rows, max_size=20))
async def test_summarize_usage_equals_the_exact_python_sum(
    db: Database, rows: list[dict[str, object]]
) -> None:
    # The fixture's database outlives the examples, so each example gets its own workspace.
    async with db.session() as session:
        ws = await _workspace(session, f"T-{uuid.uuid4().hex}")
        for row in rows:
            await s.record_usage(
                session,
                record=UsageRecord(workspace_id=ws, provider="openrouter", **row),  # type: ignore[arg-type]
            )
    async with db.session() as session:
        summary = await s.summarize_usage(
            session, workspace_id=ws, channel_id=None, since=None, until=None
        )
    assert summary.totals == expected_totals(rows)
    assert summary.by_model == expected_groups(rows, "model")
    assert summary.by_user == expected_groups(rows, "user_id")
    assert summary.by_channel == expected_groups(rows, "channel_id")
