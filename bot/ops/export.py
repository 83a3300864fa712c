"""``routerbot export``: the usage ledger as CSV or JSON, made for spreadsheets.

A header row, ISO 8601 timestamps, money both as exact decimal USD strings and as integer
nano-USD, and text cells that a spreadsheet would run as a formula (starting with
``= + - @``, a tab or a carriage return) prefixed with ``'``; a text cell that itself starts
with ``'`` gets one too, so :func:`unescape_cell` restores any value.
"""

from __future__ import annotations

import csv
import json
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


def _csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return spreadsheet_safe(text) if column in TEXT_COLUMNS else text


async def export_usage(
    store: Store, out: IO[str], *, workspace: str, since: datetime | None, fmt: str
) -> int:
    """Write every ledger row of the workspace since ``since`` (oldest first); returns the
    count. Rows are streamed, so memory stays flat whatever the ledger's size."""
    count = 0
    async with store.transaction() as tx:
        ws = await resolve_workspace(tx, workspace)
        rows = tx.usage.stream(ws.id, since=since)
        name = workspace_name(ws)
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
