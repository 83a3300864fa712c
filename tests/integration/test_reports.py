"""Operator reports: ``routerbot costs``, ``export`` (CSV and JSON round-trip every row) and
``reconcile`` against the fake OpenRouter's ``GET /generation``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.core.replies import ChatCompleted
from bot.ops import common as ops_common
from bot.ops import export as ops_export
from bot.ops import reconcile as ops_reconcile
from bot.runtime import Runtime
from storage import stores
from storage.crypto import generate_key
from storage.db import Database
from storage.migrate import upgrade
from storage.models import UsageRecord
from storage.sql_store import SqlStore, SqlUnitOfWork
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.spend_support import MEMBER, Clock, run, spend_runtime

NOW = datetime(2026, 3, 20, 15, 30)

TRICKY = [
    # (channel, user, model_served, error_kind, cost_nano, source, outcome)
    ("C1", '=HYPERLINK("http://x","y")', "a/m", None, 123_456_789, "reported", "ok"),
    ("C2", "+1 555", None, "rate_limited", 0, "none", "error"),
    ("C1", "-minus", 'b/m,with "quotes"', None, None, "unknown", "cancelled"),
    ("C3", "@at", "c/m", None, 2**56 + 1, "computed", "ok"),
    ("C1", "'already quoted", "línea\nnueva", None, 1, "reported", "cut_off"),
    ("C2", "\ttab", "d/m", None, 10**9, "reconciled", "ok"),
    ("C1", "plain", "e/m", None, 999_999_999, "reported", "ok"),
]


async def _seed_tricky(db: Database) -> int:
    async with db.session() as session:
        ws, _ = await stores.get_or_create_workspace(session, platform="slack", external_id="T123")
        other, _ = await stores.get_or_create_workspace(
            session, platform="discord", external_id="999"
        )
        assert ws.id is not None and other.id is not None
        for i, (channel, user, served, kind, cost, source, outcome) in enumerate(TRICKY):
            await stores.record_usage(
                session,
                record=UsageRecord(
                    workspace_id=ws.id,
                    channel_id=channel,
                    user_id=user,
                    provider="openrouter",
                    model_requested="req/model",
                    model_served=served,
                    prompt_tokens=1000 + i,
                    cached_tokens=i,
                    completion_tokens=10 * i,
                    reasoning_tokens=i // 2,
                    cost_nano=cost,
                    cost_source=source,
                    generation_id=f"gen-{i}" if i % 2 else None,
                    latency_ms=100 * i,
                    outcome=outcome,
                    error_kind=kind,
                    created_at=NOW - timedelta(days=i, microseconds=i * 7),
                ),
            )
        await stores.record_usage(  # another tenant: never exported with T123
            session,
            record=UsageRecord(
                workspace_id=other.id,
                channel_id="X",
                user_id="U",
                provider="openrouter",
                model_requested="m",
                cost_nano=5,
                cost_source="reported",
                outcome="ok",
            ),
        )
        return ws.id


async def _ledger(db: Database, ws_id: int) -> list[UsageRecord]:
    async with db.session() as session:
        return await stores.list_usage(session, workspace_id=ws_id)


def _expected(record: UsageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "created_at": record.created_at,
        "workspace": "slack:T123",
        "channel_id": record.channel_id,
        "user_id": record.user_id,
        "provider": record.provider,
        "model_requested": record.model_requested,
        "model_served": record.model_served,
        "prompt_tokens": record.prompt_tokens,
        "cached_tokens": record.cached_tokens,
        "completion_tokens": record.completion_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost_usd": None if record.cost_nano is None else Decimal(record.cost_nano) / 10**9,
        "cost_nano": record.cost_nano,
        "cost_source": record.cost_source,
        "generation_id": record.generation_id,
        "latency_ms": record.latency_ms,
        "outcome": record.outcome,
        "error_kind": record.error_kind,
        "conversation_id": record.conversation_id,
    }


_INTS = {
    "id",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_nano",
    "latency_ms",
    "conversation_id",
}
_NULLABLE_TEXT = {"model_served", "generation_id", "error_kind"}


def _parse(column: str, value: Any, *, from_csv: bool) -> Any:
    if from_csv:
        if value == "" and (column in _INTS or column in _NULLABLE_TEXT or column == "cost_usd"):
            return None
        value = ops_export.unescape_cell(value) if column in ops_export.TEXT_COLUMNS else value
    if value is None:
        return None
    if column in _INTS:
        return int(value)
    if column == "created_at":
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() == timedelta(0)
        return parsed.replace(tzinfo=None)
    if column == "cost_usd":
        assert isinstance(value, str)  # never a float
        return Decimal(value)
    return value


async def test_csv_export_round_trips_every_row_and_is_spreadsheet_safe(db: Database) -> None:
    ws_id = await _seed_tricky(db)
    out = io.StringIO(newline="")
    count = await ops_export.export_usage(
        SqlStore(db), out, workspace="slack:T123", since=None, fmt="csv"
    )
    assert count == len(TRICKY)
    raw = out.getvalue()
    reader = csv.reader(io.StringIO(raw, newline=""))
    header, *body = list(reader)
    assert header == list(ops_export.EXPORT_COLUMNS)
    # A spreadsheet sees text, never a formula.
    for row in body:
        for column, cell in zip(header, row, strict=True):
            if column in ops_export.TEXT_COLUMNS:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert any(cell == '\'=HYPERLINK("http://x","y")' for row in body for cell in row)
    parsed = [
        {c: _parse(c, v, from_csv=True) for c, v in zip(header, row, strict=True)} for row in body
    ]
    assert parsed == [_expected(r) for r in await _ledger(db, ws_id)]
    # USD as exact decimal strings with nano precision, not floats.
    big = next(row for row in body if row[header.index("cost_nano")] == str(2**56 + 1))
    assert big[header.index("cost_usd")] == "72057594.037927937"


async def test_json_export_round_trips_every_row(db: Database) -> None:
    ws_id = await _seed_tricky(db)
    out = io.StringIO()
    await ops_export.export_usage(SqlStore(db), out, workspace="T123", since=None, fmt="json")
    data = json.loads(out.getvalue())
    parsed = [{c: _parse(c, v, from_csv=False) for c, v in row.items()} for row in data]
    assert parsed == [_expected(r) for r in await _ledger(db, ws_id)]

    since = NOW - timedelta(days=2, hours=1)
    out = io.StringIO()
    assert (
        await ops_export.export_usage(
            SqlStore(db), out, workspace="slack:T123", since=since, fmt="json"
        )
        == 3
    )
    empty = io.StringIO()
    assert (
        await ops_export.export_usage(
            SqlStore(db), empty, workspace="slack:T123", since=NOW + timedelta(days=1), fmt="json"
        )
        == 0
    )
    assert json.loads(empty.getvalue()) == []


async def test_workspace_names_resolve_or_say_why_not(db: Database) -> None:
    async with db.session() as session:
        for platform in ("slack", "discord"):
            await stores.get_or_create_workspace(session, platform=platform, external_id="SAME")
        assert (
            await ops_common.resolve_workspace(SqlUnitOfWork(session), "discord:SAME")
        ).platform == "discord"
        with pytest.raises(ops_common.ReportError, match=r"ambiguous.*slack:SAME"):
            await ops_common.resolve_workspace(SqlUnitOfWork(session), "SAME")
        with pytest.raises(ops_common.ReportError, match="no workspace"):
            await ops_common.resolve_workspace(SqlUnitOfWork(session), "console:nope")
    with pytest.raises(ops_common.ReportError, match="not a date"):
        ops_common.parse_since("last tuesday")
    assert ops_common.parse_since("2026-03-01") == datetime(2026, 3, 1)
    assert ops_common.parse_since("2026-03-01T02:00:00+02:00") == datetime(2026, 3, 1)


def test_cli_costs_and_export_print_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'rb.db'}"

    async def prepare() -> None:
        await upgrade(url)
        db = Database(url)
        try:
            await _seed_tricky(db)
        finally:
            await db.dispose()

    asyncio.run(prepare())
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ROUTERBOT_SECRET_KEY", generate_key())
    # main() would replace the root log handlers (pytest's included) for every later test.
    monkeypatch.setattr("bot.logging.configure_logging", lambda level="INFO": None)

    assert cli.main(["costs", "--workspace", "slack:T123", "--period", "all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Spend in slack:T123 for all time")
    assert "by channel" in out and "by model" in out and "by user" in out
    assert "Monthly budgets for" in out and "Workspace: no limit" in out

    assert (
        cli.main(["costs", "--workspace", "slack:T123", "--channel", "C2", "--period", "all"]) == 0
    )
    out = capsys.readouterr().out
    assert "channel C2" in out and "by channel" not in out

    assert cli.main(["export", "--workspace", "slack:T123", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("id,created_at,workspace,")
    assert len(list(csv.reader(io.StringIO(captured.out, newline="")))) == len(TRICKY) + 1
    assert "exported 7 row(s)" in captured.err

    assert cli.main(["export", "--workspace", "nobody"]) == 2
    assert "no workspace 'nobody'" in capsys.readouterr().err


# ---- reconcile --------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@pytest.fixture
async def rt(database_url: str, fake: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with spend_runtime(database_url, fake, tmp_path, Clock(NOW)) as runtime:
        yield runtime


async def test_reconcile_finds_and_fixes_differences(rt: Runtime, fake: FakeOpenRouter) -> None:
    for i in range(4):
        done = (await run(rt, MEMBER, f"/chat question {i}"))[-1]
        assert isinstance(done, ChatCompleted)
    rows = sorted(
        await _ledger(rt.db, await rt.service.workspace_id(MEMBER)), key=lambda r: r.id or 0
    )
    assert all(r.generation_id for r in rows)
    # OpenRouter billed one chat differently from what the stream reported...
    fake.generations[rows[1].generation_id].data["total_cost"] = Decimal("0.5")  # type: ignore[index]
    # ...one ledger row lost its cost, and one generation is unknown upstream.
    ws_id = await rt.service.workspace_id(MEMBER)
    async with rt.db.session() as session:
        await stores.update_usage_cost(
            session,
            workspace_id=ws_id,
            usage_id=rows[2].id or 0,
            cost_nano=None,
            cost_source="unknown",
        )
    del fake.generations[rows[3].generation_id]  # type: ignore[arg-type]

    def args() -> dict[str, Any]:
        return {
            "workspace": "console:acme",
            "since": None,
        }

    out = io.StringIO()
    findings = await ops_reconcile.reconcile(rt.service, out, fix=False, **args())
    report = out.getvalue()
    assert {(f.usage_id, f.status) for f in findings} == {
        (rows[1].id, "differs"),
        (rows[2].id, "differs"),
        (rows[3].id, "not found"),
    }
    assert "0.500000000" in report and rows[1].generation_id in report  # type: ignore[operator]
    assert "checked 4 generation(s): 1 match, 2 differ, 1 could not be checked" in report
    assert "--fix" in report

    out = io.StringIO()
    await ops_reconcile.reconcile(rt.service, out, fix=True, **args())
    assert "Fixed 2 row(s)" in out.getvalue()
    fixed = {r.id: r for r in await _ledger(rt.db, ws_id)}
    assert (
        fixed[rows[1].id].cost_nano == 500_000_000 and fixed[rows[1].id].cost_source == "reconciled"
    )
    assert (
        fixed[rows[2].id].cost_nano == rows[2].cost_nano
        and fixed[rows[2].id].cost_source == "reconciled"
    )
    async with rt.db.session() as session:
        summary = await stores.summarize_usage(
            session, workspace_id=ws_id, channel_id=None, since=None, until=None
        )
        ledger = await stores.summarize_ledger(
            session, workspace_id=ws_id, channel_id=None, since=None, until=None
        )
    assert summary == ledger  # the rollup followed the fixes
    assert summary.totals.cost_nano == sum(r.cost_nano or 0 for r in fixed.values())

    out = io.StringIO()
    again = await ops_reconcile.reconcile(rt.service, out, fix=False, **args())
    assert [f.status for f in again] == ["not found"]
    assert "3 match, 0 differ" in out.getvalue()
    lookups = [r for r in fake.requests if r.path.endswith("/generation")]
    assert lookups and all(r.headers["Authorization"] == f"Bearer {DEFAULT_KEY}" for r in lookups)
