"""Operator reports on stdout: ``routerbot costs``, ``routerbot export``, ``routerbot reconcile``.

``--workspace`` is ``platform:id`` (``slack:T123``, ``discord:456``, ``console:acme``) or a
bare id when only one platform has it. Times are UTC; dates given as ``YYYY-MM-DD`` mean
midnight UTC.

Exports are made for spreadsheets: a header row, ISO 8601 timestamps, money both as exact
decimal USD strings and as integer nano-USD, and text cells that a spreadsheet would run as a
formula (starting with ``= + - @``, a tab or a carriage return) prefixed with ``'``; a text
cell that itself starts with ``'`` gets one too, so :func:`unescape_cell` restores any value.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import GenerationInfo, ProviderAdapter
from adapters.errors import ProviderError
from adapters.registry import OPENROUTER
from bot.config import Settings
from bot.core.budgets import budget_states, render_budget_states
from bot.core.commands import PERIODS, Period
from bot.core.errors import UsageError, UserFacingError
from bot.core.format import format_usd
from bot.core.messages import provider_sentence
from bot.core.periods import period_window
from bot.core.pricing import nano_to_usd, usd_to_nano
from storage import stores
from storage.crypto import KeyDecryptError, KeyVault
from storage.db import Database
from storage.migrate import ensure_schema
from storage.models import UsageRecord, Workspace, utcnow
from storage.stores import UsageTotals

__all__ = [
    "EXPORT_COLUMNS",
    "ReportError",
    "add_arguments",
    "export_usage",
    "parse_since",
    "reconcile",
    "resolve_workspace",
    "spreadsheet_safe",
    "unescape_cell",
    "write_costs",
]

PLATFORMS = ("slack", "discord", "console")
#: How many ``GET /generation`` lookups run at once (polite to the API, still quick).
RECONCILE_CONCURRENCY = 8
RECONCILED = "reconciled"

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "workspace",
    "channel_id",
    "user_id",
    "provider",
    "model_requested",
    "model_served",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_nano",
    "cost_source",
    "generation_id",
    "latency_ms",
    "outcome",
    "error_kind",
    "conversation_id",
)
_TEXT_COLUMNS = frozenset(
    {
        "workspace",
        "channel_id",
        "user_id",
        "provider",
        "model_requested",
        "model_served",
        "cost_source",
        "generation_id",
        "outcome",
        "error_kind",
    }
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "'")


class ReportError(Exception):
    """An operator mistake (unknown workspace, bad date); the message says which."""


# ---- helpers ----------------------------------------------------------------------------


def spreadsheet_safe(value: str) -> str:
    """Defuse formula injection: a cell a spreadsheet would evaluate becomes plain text."""
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def unescape_cell(value: str) -> str:
    """The inverse of :func:`spreadsheet_safe`."""
    return value[1:] if value.startswith("'") else value


def nano_to_usd_text(nano: int | None) -> str | None:
    """Exact USD as a decimal string with nine places (``"0.000012345"``); never a float."""
    if nano is None:
        return None
    return f"{Decimal(nano).scaleb(-9):f}"


def parse_since(text: str | None) -> datetime | None:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 time; aware times are converted to UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"--since {text!r} is not a date (YYYY-MM-DD) or ISO time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _period(text: str) -> Period:
    for period in PERIODS:
        if text.lower() == period:
            return period
    raise argparse.ArgumentTypeError(f"choose from {', '.join(PERIODS)}")


async def resolve_workspace(session: AsyncSession, spec: str) -> Workspace:
    """``platform:id``, or a bare id that only one platform has."""
    platform, sep, external_id = spec.partition(":")
    if sep and platform in PLATFORMS:
        found = await stores.find_workspaces(session, external_id=external_id, platform=platform)
    else:
        found = await stores.find_workspaces(session, external_id=spec)
    if not found:
        raise ReportError(f"no workspace {spec!r} in this database")
    if len(found) > 1:
        names = ", ".join(f"{w.platform}:{w.external_id}" for w in found)
        raise ReportError(f"{spec!r} is ambiguous ({names}); give it as platform:id")
    return found[0]


def _name(ws: Workspace) -> str:
    return f"{ws.platform}:{ws.external_id}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _usd(totals: UsageTotals) -> str:
    text = format_usd(nano_to_usd(totals.cost_nano))
    return f"≈{text}" if totals.computed_cost_chats else text


def _totals_row(key: str, t: UsageTotals) -> list[str]:
    return [
        key,
        _usd(t),
        f"{t.chats:,}",
        f"{t.failed:,}",
        f"{t.unknown_cost_chats:,}",
        f"{t.prompt_tokens:,}",
        f"{t.cached_tokens:,}",
        f"{t.completion_tokens:,}",
    ]


async def _open(settings: Settings) -> Database:
    db = Database(settings.database_url)
    await ensure_schema(db)
    return db


# ---- costs ------------------------------------------------------------------------------


async def write_costs(
    db: Database,
    out: IO[str],
    *,
    workspace: str,
    channel: str | None,
    period: Period,
    now: datetime | None = None,
) -> None:
    """The ``/costs`` report as tables: totals, by channel, by model, by user, budgets."""
    now = now or utcnow()
    window = period_window(period, now)
    async with db.session() as session:
        ws = await resolve_workspace(session, workspace)
        assert ws.id is not None
        summary = await stores.summarize_usage(
            session, workspace_id=ws.id, channel_id=channel, since=window.since, until=window.until
        )
        states = await budget_states(session, workspace_id=ws.id, channel_id=channel, now=now)
    where = _name(ws) + (f" channel {channel}" if channel else "")
    print(f"Spend in {where} for {window.label}", file=out)
    headers = ["", "cost", "chats", "failed", "unknown", "prompt", "cached", "completion"]
    numeric = set(range(1, len(headers)))
    print("", file=out)
    for line in _table(headers, [_totals_row("total", summary.totals)], numeric):
        print(line, file=out)
    sections = [
        ("channel", summary.by_channel),
        ("model", summary.by_model),
        ("user", summary.by_user),
    ]
    for title, groups in sections:
        if channel and title == "channel":
            continue
        print("", file=out)
        rows = [_totals_row(key, totals) for key, totals in groups]
        for line in _table([f"by {title}", *headers[1:]], rows, numeric):
            print(line, file=out)
    if summary.totals.computed_cost_chats:
        print(
            "\n≈: includes costs computed from list prices (no provider-reported cost).", file=out
        )
    print("", file=out)
    print(render_budget_states(states, now=now, channel_id=channel, format_channel=str), file=out)


# ---- export -----------------------------------------------------------------------------


def export_row(record: UsageRecord, workspace: str) -> dict[str, Any]:
    """One ledger row as plain values (JSON's shape; CSV writes ``None`` as an empty cell)."""
    return {
        "id": record.id,
        "created_at": record.created_at.replace(tzinfo=UTC).isoformat(),
        "workspace": workspace,
        "channel_id": record.channel_id,
        "user_id": record.user_id,
        "provider": record.provider,
        "model_requested": record.model_requested,
        "model_served": record.model_served,
        "prompt_tokens": record.prompt_tokens,
        "cached_tokens": record.cached_tokens,
        "completion_tokens": record.completion_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost_usd": nano_to_usd_text(record.cost_nano),
        "cost_nano": record.cost_nano,
        "cost_source": record.cost_source,
        "generation_id": record.generation_id,
        "latency_ms": record.latency_ms,
        "outcome": record.outcome,
        "error_kind": record.error_kind,
        "conversation_id": record.conversation_id,
    }


def _csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return spreadsheet_safe(text) if column in _TEXT_COLUMNS else text


async def export_usage(
    db: Database,
    out: IO[str],
    *,
    workspace: str,
    since: datetime | None,
    fmt: str,
) -> int:
    """Write every ledger row of the workspace since ``since`` (oldest first); returns the
    count. Rows are streamed, so memory stays flat whatever the ledger's size."""
    count = 0
    async with db.session() as session:
        ws = await resolve_workspace(session, workspace)
        assert ws.id is not None
        rows: AsyncIterator[UsageRecord] = stores.stream_usage(
            session, workspace_id=ws.id, since=since
        )
        name = _name(ws)
        if fmt == "csv":
            writer = csv.writer(out)  # QUOTE_MINIMAL and CRLF rows: what spreadsheets expect
            writer.writerow(EXPORT_COLUMNS)
            async for record in rows:
                data = export_row(record, name)
                writer.writerow([_csv_cell(c, data[c]) for c in EXPORT_COLUMNS])
                count += 1
        else:
            out.write("[")
            async for record in rows:
                out.write(",\n " if count else "\n ")
                out.write(json.dumps(export_row(record, name), ensure_ascii=False))
                count += 1
            out.write("\n]\n" if count else "]\n")
    return count


# ---- reconcile --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    usage_id: int
    created_at: datetime
    generation_id: str
    model: str
    ledger_nano: int | None
    ledger_source: str
    provider_nano: int | None
    status: str  # "differs", "not found", "no cost", "lookup failed: …"


async def _openrouter_key(
    db: Database, vault: KeyVault, settings: Settings, workspace_id: int
) -> SecretStr | None:
    async with db.session() as session:
        row = await stores.get_key(session, workspace_id=workspace_id, provider=OPENROUTER.name)
    if row is None:
        return settings.fallback_key(OPENROUTER.name)
    try:
        return vault.decrypt(row.ciphertext)
    except KeyDecryptError:
        raise ReportError(
            f"the workspace's {OPENROUTER.display_name} key cannot be decrypted with "
            "ROUTERBOT_SECRET_KEY"
        ) from None


async def _check(
    adapter: ProviderAdapter, key: SecretStr, record: UsageRecord, gate: asyncio.Semaphore
) -> Finding | None:
    assert record.id is not None
    assert record.generation_id is not None
    info: GenerationInfo | None
    status = "differs"
    async with gate:
        try:
            info = await adapter.get_generation(record.generation_id, key)
        except ProviderError as exc:
            info, status = None, f"lookup failed: {provider_sentence(exc)}"
    provider_nano = None
    if info is None:
        status = "not found" if status == "differs" else status
    elif info.total_cost is None:
        status = "no cost"
    else:
        provider_nano = usd_to_nano(info.total_cost)
        if provider_nano == record.cost_nano:
            return None
    return Finding(
        record.id,
        record.created_at,
        record.generation_id,
        record.model_served or record.model_requested,
        record.cost_nano,
        record.cost_source,
        provider_nano,
        status,
    )


async def reconcile(
    db: Database,
    out: IO[str],
    *,
    settings: Settings,
    vault: KeyVault,
    adapters: dict[str, ProviderAdapter],
    workspace: str,
    since: datetime | None,
    fix: bool,
) -> list[Finding]:
    """Check every ledger row with an OpenRouter generation id against ``GET /generation``;
    print the differences; with ``fix``, take OpenRouter's cost (source ``reconciled``) and
    correct the rollup in the same transaction."""
    async with db.session() as session:
        ws = await resolve_workspace(session, workspace)
        assert ws.id is not None
        records = [
            r
            async for r in stores.stream_usage(
                session, workspace_id=ws.id, since=since, with_generation_id=True
            )
            if r.provider == OPENROUTER.name
        ]
    adapter = adapters.get(OPENROUTER.name)
    if adapter is None:
        raise ReportError(f"{OPENROUTER.display_name} is not configured")
    key = await _openrouter_key(db, vault, settings, ws.id)
    if key is None:
        raise ReportError(
            f"{_name(ws)} has no {OPENROUTER.display_name} key and "
            f"{OPENROUTER.api_key_setting.upper()} is unset"
        )
    gate = asyncio.Semaphore(RECONCILE_CONCURRENCY)
    results = await asyncio.gather(*(_check(adapter, key, r, gate) for r in records))
    findings = [f for f in results if f is not None]
    differing = [f for f in findings if f.status == "differs"]

    def usd(nano: int | None) -> str:
        return "-" if nano is None else nano_to_usd_text(nano) or "-"

    if findings:
        headers = [
            "id",
            "created_at (UTC)",
            "generation_id",
            "model",
            "ledger_usd",
            "source",
            f"{OPENROUTER.name}_usd",
            "diff_usd",
            "status",
        ]
        rows = [
            [
                str(f.usage_id),
                f.created_at.isoformat(sep=" ", timespec="seconds"),
                f.generation_id,
                f.model,
                usd(f.ledger_nano),
                f.ledger_source,
                usd(f.provider_nano),
                usd(f.provider_nano - (f.ledger_nano or 0)) if f.provider_nano is not None else "-",
                f.status,
            ]
            for f in findings
        ]
        for line in _table(headers, rows, {0, 4, 6, 7}):
            print(line, file=out)
        print("", file=out)
    matched = len(records) - len(findings)
    print(
        f"{_name(ws)}: checked {len(records)} generation(s): {matched} match, "
        f"{len(differing)} differ, {len(findings) - len(differing)} could not be checked.",
        file=out,
    )
    if fix and differing:
        async with db.session() as session:
            for f in differing:
                await stores.update_usage_cost(
                    session,
                    workspace_id=ws.id,
                    usage_id=f.usage_id,
                    cost_nano=f.provider_nano,
                    cost_source=RECONCILED,
                )
        print(
            f"Fixed {len(differing)} row(s): cost taken from {OPENROUTER.display_name}.", file=out
        )
    elif differing:
        print(f"Run again with --fix to take {OPENROUTER.display_name}'s costs.", file=out)
    return findings


# ---- command line -----------------------------------------------------------------------


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ws_help = "platform:id (slack:T123, discord:456, console:acme) or a bare id"
    costs = sub.add_parser("costs", help="a workspace's or channel's spend, as tables")
    costs.add_argument("--workspace", required=True, help=ws_help)
    costs.add_argument("--channel", help="one channel id (default: the whole workspace)")
    costs.add_argument(
        "--period", type=_period, default="month", help="today, week, month, 30d or all (UTC)"
    )
    costs.set_defaults(handler=_costs_command)

    export = sub.add_parser("export", help="the usage ledger as CSV or JSON on stdout")
    export.add_argument("--workspace", required=True, help=ws_help)
    export.add_argument("--since", help="YYYY-MM-DD (UTC) or an ISO time; default: everything")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.set_defaults(handler=_export_command)

    rec = sub.add_parser(
        "reconcile", help="check recorded costs against OpenRouter's GET /generation"
    )
    rec.add_argument("--workspace", required=True, help=ws_help)
    rec.add_argument("--since", help="YYYY-MM-DD (UTC) or an ISO time; default: everything")
    rec.add_argument("--fix", action="store_true", help="take OpenRouter's cost where it differs")
    rec.set_defaults(handler=_reconcile_command)


def _fail(message: str) -> int:
    print(f"routerbot: {message}", file=sys.stderr)
    return 2


def _run(coro: Any) -> int:
    try:
        return int(asyncio.run(coro))
    except (ReportError, UsageError, UserFacingError) as exc:
        return _fail(str(exc))


def _costs_command(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> int:
        db = await _open(settings)
        try:
            await write_costs(
                db, sys.stdout, workspace=args.workspace, channel=args.channel, period=args.period
            )
        finally:
            await db.dispose()
        return 0

    return _run(main())


def _export_command(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> int:
        since = parse_since(args.since)
        db = await _open(settings)
        try:
            count = await export_usage(
                db, sys.stdout, workspace=args.workspace, since=since, fmt=args.format
            )
        finally:
            await db.dispose()
        print(f"exported {count} row(s)", file=sys.stderr)
        return 0

    return _run(main())


def _reconcile_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime

    async def main() -> int:
        since = parse_since(args.since)
        runtime, _ = await build_runtime(settings)
        try:
            findings = await reconcile(
                runtime.db,
                sys.stdout,
                settings=settings,
                vault=runtime.vault,
                adapters=runtime.adapters,
                workspace=args.workspace,
                since=since,
                fix=args.fix,
            )
        finally:
            await runtime.aclose()
        # Non-zero when differences remain, so a scheduled check can alert on it.
        return 1 if any(f.status == "differs" for f in findings) and not args.fix else 0

    return _run(main())
