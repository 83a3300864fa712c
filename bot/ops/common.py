"""What every operator command shares: naming a workspace, reading dates, plain tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from bot.core.ports import UnitOfWork, WorkspaceRow

PLATFORMS = ("slack", "discord", "console")


class ReportError(Exception):
    """An operator mistake (unknown workspace, bad date); the message says which."""


async def resolve_workspace(tx: UnitOfWork, spec: str) -> WorkspaceRow:
    """``platform:id``, or a bare id that only one platform has."""
    platform, sep, external_id = spec.partition(":")
    if sep and platform in PLATFORMS:
        found = await tx.workspaces.find(external_id=external_id, platform=platform)
    else:
        found = await tx.workspaces.find(external_id=spec, platform=None)
    if not found:
        raise ReportError(f"no workspace {spec!r} in this database")
    if len(found) > 1:
        names = ", ".join(f"{w.platform}:{w.external_id}" for w in found)
        raise ReportError(f"{spec!r} is ambiguous ({names}); give it as platform:id")
    return found[0]


def workspace_name(ws: WorkspaceRow) -> str:
    return f"{ws.platform}:{ws.external_id}"


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


def nano_to_usd_text(nano: int | None) -> str | None:
    """Exact USD as a decimal string with nine places (``"0.000012345"``); never a float."""
    if nano is None:
        return None
    return f"{Decimal(nano).scaleb(-9):f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Rows under headers, columns aligned (``right``: the numeric ones)."""
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
