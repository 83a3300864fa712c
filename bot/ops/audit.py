"""``routerbot audit``: a workspace's audit log of admin changes as CSV or JSON, oldest first.

Spreadsheet-safe like ``routerbot export`` (:mod:`bot.ops.export`): a header row, ISO 8601
times in UTC, and text cells a spreadsheet would run as a formula prefixed with ``'``
(prompts and user names are free text).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any

from bot.core.ports import AuditRow, Store
from bot.ops.common import resolve_workspace, workspace_name
from bot.ops.export import write_rows

AUDIT_COLUMNS = (
    "id",
    "created_at",
    "workspace",
    "platform",
    "user_id",
    "action",
    "target",
    "old_value",
    "new_value",
)
_TEXT_COLUMNS = frozenset(AUDIT_COLUMNS) - {"id", "created_at"}


def audit_row(entry: AuditRow, workspace: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at.replace(tzinfo=UTC).isoformat(),
        "workspace": workspace,
        "platform": entry.platform,
        "user_id": entry.user_id,
        "action": entry.action,
        "target": entry.target,
        "old_value": entry.old_value,
        "new_value": entry.new_value,
    }


async def export_audit(
    store: Store, out: IO[str], *, workspace: str, since: datetime | None, fmt: str
) -> int:
    """Write every audit entry of the workspace since ``since``; returns the count."""
    async with store.transaction() as tx:
        ws = await resolve_workspace(tx, workspace)
        name = workspace_name(ws)
        rows = (audit_row(e, name) async for e in tx.audit.stream(ws.id, since=since))
        return await write_rows(
            out, rows, columns=AUDIT_COLUMNS, text_columns=_TEXT_COLUMNS, fmt=fmt
        )
