"""Allowlists follow the catalogue: stored prices become the provider's current ones, models it
no longer serves are marked unavailable, models it serves again are cleared.

:func:`sync_allowlists` runs after every refresh of a long-running process (all workspaces)
and for ``routerbot models sync [--workspace W]``; it returns what changed, per workspace, for
the CLI to print and the log to keep.

Seeding a new workspace: :func:`before_new_workspace` makes sure the catalogue was asked (once
per process, before the workspace's transaction opens, for at most :data:`SEED_WAIT` seconds);
:func:`seed_models` gives the recommended models with their current prices, those the
catalogue no longer lists marked, and the default: the first recommended model it serves (the
file's first when the catalogue cannot be reached, as before; the first chat will tell).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import SecretStr

from adapters.base import ModelInfo, ModelPricing, ProviderAdapter
from adapters.catalogue import check_model
from bot.core.catalogue import Allowlisted, Catalogue, ModelChange, changes_for
from bot.core.catalogue.texts import cannot_add_retired
from bot.core.deps import utcnow
from bot.core.errors import NotFound
from bot.core.ports import AllowedModelRow, NewModel, Store, UnitOfWork
from bot.core.pricing import RecommendedModel, nano_to_price, price_to_nano

__all__ = [
    "PROVIDER",
    "SEED_WAIT",
    "Seed",
    "WorkspaceChange",
    "allowlisted",
    "before_new_workspace",
    "confirm_model",
    "seed_models",
    "sync_allowlists",
]

log = logging.getLogger(__name__)

#: The provider whose catalogue routerbot follows.
PROVIDER = "openrouter"


@dataclass(frozen=True, slots=True)
class WorkspaceChange:
    workspace_id: int
    change: ModelChange


def allowlisted(row: AllowedModelRow) -> Allowlisted:
    return Allowlisted(
        model_id=row.model_id,
        pricing=ModelPricing(
            nano_to_price(row.input_nano_per_1m),
            nano_to_price(row.output_nano_per_1m),
            nano_to_price(row.cached_input_nano_per_1m),
        ),
        unavailable=row.unavailable_reason,
        confirmed_at=row.confirmed_at,
    )


async def sync_allowlists(
    store: Store,
    catalogue: Catalogue,
    *,
    workspace_id: int | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> list[WorkspaceChange]:
    """Apply the cached catalogue to the allowlists (one workspace, or all); what changed."""
    if catalogue.snapshot is None:
        return []
    now = now or utcnow()
    applied: list[WorkspaceChange] = []
    async with store.transaction() as tx:
        for ws_id, row in await tx.allowlist.of_provider(PROVIDER, workspace_id):
            for change in changes_for(allowlisted(row), catalogue, today=today):
                await _apply(tx, ws_id, change, now)
                applied.append(WorkspaceChange(ws_id, change))
    if applied:
        log.info("catalogue sync: %d allowlist change(s)", len(applied))
    return applied


async def _apply(tx: UnitOfWork, workspace_id: int, change: ModelChange, now: datetime) -> None:
    if change.kind == "price" and change.new is not None:
        await tx.allowlist.set_pricing(
            workspace_id,
            change.model_id,
            input_nano_per_1m=price_to_nano(change.new.input_per_1m),
            output_nano_per_1m=price_to_nano(change.new.output_per_1m),
            cached_input_nano_per_1m=price_to_nano(change.new.cached_input_per_1m),
        )
    elif change.kind == "unavailable":
        await tx.allowlist.mark_unavailable(
            workspace_id, change.model_id, reason=change.reason or "gone", now=now
        )
    elif change.kind == "available":
        await tx.allowlist.mark_available(workspace_id, change.model_id, now=now)


async def confirm_model(
    adapter: ProviderAdapter,
    catalogue: Catalogue | None,
    model_id: str,
    api_key: SecretStr | None,
    provider_name: str,
) -> ModelInfo | None:
    """``/models add``: the model's facts when the provider serves it, ``None`` for an id it
    does not know. A model it knows but nobody serves any more (retired), or one this
    process saw leave the catalogue, raises NotFound saying so: it is not an unknown id."""
    check = await check_model(adapter, model_id, api_key)
    if check.status == "served":
        if catalogue is not None:
            catalogue.mark_served(model_id)
        return check.info or ModelInfo(id=model_id)
    if check.status == "no_endpoints" or (catalogue is not None and catalogue.known_gone(model_id)):
        raise NotFound(cannot_add_retired(model_id, provider_name))
    return None


#: Seconds a new workspace's first command waits for the catalogue, once per process.
SEED_WAIT = 10.0


async def before_new_workspace(
    catalogue: Catalogue | None, store: Store, platform: str, external_id: str
) -> None:
    """Ask the catalogue before a workspace is created, so its default is not a retired
    model. Only when the process has no snapshot and the workspace does not exist yet."""
    if catalogue is None or catalogue.snapshot is not None:
        return
    async with store.transaction() as tx:
        if await tx.workspaces.find(external_id=external_id, platform=platform):
            return
    try:
        async with asyncio.timeout(SEED_WAIT):
            await catalogue.ensure()
    except TimeoutError:
        log.warning("the model catalogue did not answer in %s s; seeding without it", SEED_WAIT)


@dataclass(frozen=True, slots=True)
class Seed:
    """A new workspace's allowlist: the models, those no longer served, and the default."""

    models: list[NewModel]
    unavailable: list[tuple[str, str]]
    default: str | None


def seed_models(catalogue: Catalogue | None, recommended: Sequence[RecommendedModel]) -> Seed:
    """The recommended models at the catalogue's current prices; those it no longer lists
    (``(id, reason)``) marked; the first it serves as the default."""
    models: list[NewModel] = []
    unavailable: list[tuple[str, str]] = []
    default: str | None = None
    for model in recommended:
        pricing = model.pricing
        if catalogue is not None and catalogue.snapshot is not None:
            status = catalogue.status(model.model_id)
            if status.availability in ("gone", "expired"):
                unavailable.append((model.model_id, status.availability))
            elif default is None:
                default = model.model_id
            current = catalogue.pricing(model.model_id)
            pricing = _merged(pricing, current) if current is not None else pricing
        models.append(
            NewModel(
                provider=model.provider,
                model_id=model.model_id,
                input_nano_per_1m=price_to_nano(pricing.input_per_1m),
                output_nano_per_1m=price_to_nano(pricing.output_per_1m),
                cached_input_nano_per_1m=price_to_nano(pricing.cached_input_per_1m),
            )
        )
    if default is None and recommended:
        default = recommended[0].model_id  # the catalogue cannot tell: let the first chat
    return Seed(models, unavailable, default)


def _merged(stored: ModelPricing, current: ModelPricing) -> ModelPricing:
    return ModelPricing(
        current.input_per_1m if current.input_per_1m is not None else stored.input_per_1m,
        current.output_per_1m if current.output_per_1m is not None else stored.output_per_1m,
        current.cached_input_per_1m
        if current.cached_input_per_1m is not None
        else stored.cached_input_per_1m,
    )
