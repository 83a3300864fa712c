"""``routerbot export``: the usage ledger as CSV or JSON, made for spreadsheets.

A header row, ISO 8601 timestamps, money both as exact decimal USD strings and as integer
nano-USD, and text cells that a spreadsheet would run as a formula (starting with
``= + - @``, a tab or a carriage return) prefixed with ``'``; a text cell that itself starts
with ``'`` gets one too, so :func:`unescape_cell` restores any value.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from bot.core.ports import LedgerRow, Store
from bot.ops.common import nano_to_usd_text, resolve_workspace, workspace_name

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
TEXT_COLUMNS = frozenset(
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


def spreadsheet_safe(value: str) -> str:
    """Defuse formula injection: a cell a spreadsheet would evaluate becomes plain text."""
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def unescape_cell(value: str) -> str:
    """The inverse of :func:`spreadsheet_safe`."""
    return value[1:] if value.startswith("'") else value


def export_row(record: LedgerRow, workspace: str) -> dict[str, Any]:
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


def _csv_cell(column: str, value: Any, text_columns: frozenset[str]) -> str:
    if value is None:
        return ""
    text = str(value)
    return spreadsheet_safe(text) if column in text_columns else text


async def write_rows(
    out: IO[str],
    rows: AsyncIterator[dict[str, Any]],
    *,
    columns: Sequence[str],
    text_columns: frozenset[str],
    fmt: str,
) -> int:
    """Write ``rows`` as CSV (a header, spreadsheet-safe text cells) or as a JSON array, as
    they come (memory stays flat whatever their number); returns how many."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)  # QUOTE_MINIMAL and CRLF rows: what spreadsheets expect
        writer.writerow(columns)
        async for data in rows:
            writer.writerow([_csv_cell(c, data[c], text_columns) for c in columns])
            count += 1
        return count
    out.write("[")
    async for data in rows:
        out.write(",\n " if count else "\n ")
        out.write(json.dumps(data, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


async def export_usage(
    store: Store, out: IO[str], *, workspace: str, since: datetime | None, fmt: str
) -> int:
    """Write every ledger row of the workspace since ``since`` (oldest first); returns the
    count. Rows are streamed, so memory stays flat whatever the ledger's size."""
    async with store.transaction() as tx:
        ws = await resolve_workspace(tx, workspace)
        name = workspace_name(ws)
        rows = (export_row(r, name) async for r in tx.usage.stream(ws.id, since=since))
        return await write_rows(
            out, rows, columns=EXPORT_COLUMNS, text_columns=TEXT_COLUMNS, fmt=fmt
        )
