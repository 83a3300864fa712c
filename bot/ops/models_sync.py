"""``routerbot models sync [--workspace W]``: refresh the provider's catalogue now and let the
allowlists follow it (prices, availability), printing what changed.

Long-running front-ends do the same after every refresh (at start and every 12 hours); this
is for an operator who wants it now, or runs only the console. The catalogue is fetched
once, whatever the number of workspaces; it needs no API key.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import IO

from adapters.base import ModelPricing
from adapters.registry import build_adapters
from bot.config import Settings
from bot.core.catalogue import ModelChange
from bot.core.catalogue.sync import WorkspaceChange, sync_allowlists
from bot.core.format import format_price
from bot.ops.common import ReportError, resolve_workspace, workspace_name
from bot.runtime import build_catalogue, open_store

__all__ = ["add_arguments", "describe", "sync_models"]

_REASONS = {
    "gone": "gone from the catalogue",
    "expired": "past its expiration date",
    "refused": "the provider refused it",
}


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser("models", help="the provider's model catalogue")
    actions = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sync = actions.add_parser(
        "sync", help="refresh the catalogue now; allowlist prices and availability follow it"
    )
    sync.add_argument("--workspace", help="platform:id or a bare id (default: every workspace)")
    sync.set_defaults(handler=_sync_command)


def _pair(pricing: ModelPricing | None) -> str:
    if pricing is None:
        return "?"
    return f"{format_price(pricing.input_per_1m)} / {format_price(pricing.output_per_1m)}"


def _prices(change: ModelChange) -> str:
    return f"{_pair(change.old)} → {_pair(change.new)} per 1M tokens (in / out)"


def describe(change: ModelChange) -> str:
    """One change, as the operator reads it."""
    if change.kind == "price":
        return f"price {_prices(change)}"
    if change.kind == "unavailable":
        return f"no longer available ({_REASONS.get(change.reason or '', change.reason)})"
    return "available again"


async def sync_models(settings: Settings, out: IO[str], *, workspace: str | None) -> int:
    """Fetch the catalogue, apply it, print the changes; 1 when it cannot be fetched."""
    adapters = build_adapters(
        settings.base_urls(),
        app_url=settings.routerbot_app_url,
        app_title=settings.routerbot_app_title,
    )
    store = await open_store(settings)
    try:
        catalogue = build_catalogue(adapters)
        workspace_id = None
        names: dict[int, str] = {}
        if workspace is not None:
            async with store.transaction() as tx:
                workspace_id = (await resolve_workspace(tx, workspace)).id
        if catalogue is None:
            raise ReportError("the configured provider has no model catalogue")
        snapshot = await catalogue.refresh()
        if snapshot is None:
            raise ReportError(
                f"the model catalogue at {settings.openrouter_base_url} could not be reached; "
                "nothing changed"
            )
        changes = await sync_allowlists(store, catalogue, workspace_id=workspace_id)
        async with store.transaction() as tx:
            for ws_id in {c.workspace_id for c in changes}:
                row = await tx.workspaces.get(ws_id)
                names[ws_id] = workspace_name(row) if row else str(ws_id)
    finally:
        await store.close()
        for adapter in adapters.values():
            await adapter.aclose()
    print(
        f"Catalogue: {len(snapshot.entries)} models from {settings.openrouter_base_url} "
        f"({snapshot.fetched_at:%Y-%m-%d %H:%M} UTC).",
        file=out,
    )
    _print_changes(changes, names, out)
    return 0


def _print_changes(changes: Sequence[WorkspaceChange], names: dict[int, str], out: IO[str]) -> None:
    if not changes:
        print(
            "No changes: every allowlisted model's price and availability match the catalogue.",
            file=out,
        )
        return
    width = max(len(names[c.workspace_id]) for c in changes)
    model_width = max(len(c.change.model_id) for c in changes)
    for c in changes:
        name = names[c.workspace_id].ljust(width)
        print(f"{name}  {c.change.model_id.ljust(model_width)}  {describe(c.change)}", file=out)
    count = len({c.workspace_id for c in changes})
    plural = "s" if len(changes) != 1 else ""
    spaces = "workspace" if count == 1 else "workspaces"
    print(f"{len(changes)} change{plural} in {count} {spaces}.", file=out)


def _sync_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(sync_models(settings, sys.stdout, workspace=args.workspace))
    except ReportError as exc:
        print(f"routerbot: {exc}", file=sys.stderr)
        return 1
