"""``routerbot reconcile``: recorded costs checked against OpenRouter's ``GET /generation``.

Every ledger row with an OpenRouter generation id is looked up; differences are printed, and
with ``--fix`` the provider's cost is taken (source ``reconciled``), its rollups corrected in
the same transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from pydantic import SecretStr

from adapters.base import GenerationInfo, ProviderAdapter
from adapters.errors import ProviderError
from adapters.registry import OPENROUTER
from bot.core.messages import provider_sentence
from bot.core.ports import LedgerRow
from bot.core.pricing import usd_to_nano
from bot.core.service import ProviderService
from bot.ops.common import ReportError, nano_to_usd_text, resolve_workspace, table, workspace_name

#: How many ``GET /generation`` lookups run at once (polite to the API, still quick).
RECONCILE_CONCURRENCY = 8
RECONCILED = "reconciled"


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


async def _check(
    adapter: ProviderAdapter, key: SecretStr, record: LedgerRow, gate: asyncio.Semaphore
) -> Finding | None:
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


def _usd(nano: int | None) -> str:
    return "-" if nano is None else nano_to_usd_text(nano) or "-"


def _print_findings(findings: list[Finding], out: IO[str]) -> None:
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
            _usd(f.ledger_nano),
            f.ledger_source,
            _usd(f.provider_nano),
            _usd(f.provider_nano - (f.ledger_nano or 0)) if f.provider_nano is not None else "-",
            f.status,
        ]
        for f in findings
    ]
    for line in table(headers, rows, {0, 4, 6, 7}):
        print(line, file=out)
    print("", file=out)


async def reconcile(
    service: ProviderService,
    out: IO[str],
    *,
    workspace: str,
    since: datetime | None,
    fix: bool,
) -> list[Finding]:
    """Check, print, and with ``fix`` correct; returns what differs or could not be checked."""
    store = service.deps.store
    async with store.transaction() as tx:
        ws = await resolve_workspace(tx, workspace)
        records = [
            r
            async for r in tx.usage.stream(ws.id, since=since, with_generation_id=True)
            if r.provider == OPENROUTER.name
        ]
    adapter = service.deps.adapters.get(OPENROUTER.name)
    if adapter is None:
        raise ReportError(f"{OPENROUTER.display_name} is not configured")
    key = await service.keys.resolve(ws.id, OPENROUTER.name, required=False)
    if key is None:
        raise ReportError(
            f"{workspace_name(ws)} has no {OPENROUTER.display_name} key and "
            f"{OPENROUTER.api_key_setting.upper()} is unset"
        )
    gate = asyncio.Semaphore(RECONCILE_CONCURRENCY)
    results = await asyncio.gather(*(_check(adapter, key, r, gate) for r in records))
    findings = [f for f in results if f is not None]
    differing = [f for f in findings if f.status == "differs"]
    if findings:
        _print_findings(findings, out)
    matched = len(records) - len(findings)
    print(
        f"{workspace_name(ws)}: checked {len(records)} generation(s): {matched} match, "
        f"{len(differing)} differ, {len(findings) - len(differing)} could not be checked.",
        file=out,
    )
    if fix and differing:
        async with store.transaction() as tx:
            for f in differing:
                await tx.usage.correct_cost(
                    ws.id, f.usage_id, cost_nano=f.provider_nano, cost_source=RECONCILED
                )
        print(
            f"Fixed {len(differing)} row(s): cost taken from {OPENROUTER.display_name}.", file=out
        )
    elif differing:
        print(f"Run again with --fix to take {OPENROUTER.display_name}'s costs.", file=out)
    return findings
