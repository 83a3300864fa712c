"""The allowlist: which models a workspace may use, their stored prices, its default model
and the channels' own defaults.

Changes are admin-only (checked here) and audited in their own transaction; anyone may read
it. Ids are looked up on their provider before they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import ModelPricing
from adapters.registry import DEFAULT_PROVIDER, display_name, find_provider, provider_for_model
from bot.core import audit, permissions
from bot.core.catalogue import Catalogue
from bot.core.catalogue.sync import confirm_model
from bot.core.catalogue.texts import allowlist_note
from bot.core.deps import Deps
from bot.core.errors import ModelNotAllowed, NotFound
from bot.core.format import format_price
from bot.core.keys import Keys
from bot.core.ports import AllowedModelRow, NewModel
from bot.core.pricing import RecommendedModel, nano_to_price, price_to_nano
from bot.core.replies import Invocation
from bot.core.workspaces import Workspaces


@dataclass(frozen=True, slots=True)
class ModelEntry:
    model_id: str
    provider: str
    pricing: ModelPricing
    is_default: bool
    #: Why the provider no longer serves it (``gone``, ``expired``, ``refused``), if so.
    unavailable: str | None = None


def _prices(row: AllowedModelRow | NewModel | None) -> str | None:
    """How the audit log shows a model's stored prices."""
    if row is None:
        return None
    pricing = ModelPricing(
        nano_to_price(row.input_nano_per_1m), nano_to_price(row.output_nano_per_1m)
    )
    return f"{format_price(pricing.input_per_1m)} in / {format_price(pricing.output_per_1m)} out"


def pricing_of(row: AllowedModelRow) -> ModelPricing:
    return ModelPricing(
        input_per_1m=nano_to_price(row.input_nano_per_1m),
        output_per_1m=nano_to_price(row.output_nano_per_1m),
        cached_input_per_1m=nano_to_price(row.cached_input_nano_per_1m),
    )


class Allowlist:
    def __init__(self, deps: Deps, workspaces: Workspaces, keys: Keys) -> None:
        self.deps = deps
        self.workspaces = workspaces
        self.keys = keys

    async def list_models(self, ctx: Invocation) -> list[ModelEntry]:
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            ws = await tx.workspaces.get(ws_id)
            rows = await tx.allowlist.all(ws_id)
        default = ws.default_model if ws else None
        return [
            ModelEntry(
                r.model_id, r.provider, pricing_of(r), r.model_id == default, r.unavailable_reason
            )
            for r in rows
        ]

    def recommended_models(self) -> list[RecommendedModel]:
        return self.deps.model_settings.recommended()

    async def add_model(self, ctx: Invocation, model_id: str) -> ModelEntry:
        permissions.require_admin(self.deps.settings, ctx, "change the model allowlist")
        ws_id = await self.workspaces.id_of(ctx)
        provider = provider_for_model(model_id)
        adapter = self.deps.adapter(provider)
        key = await self.keys.resolve(ws_id, provider, required=False)
        # Retired models are said to be so; only an id the provider never knew is "unknown".
        info = await confirm_model(
            adapter, self.deps.catalogue, model_id, key, display_name(provider)
        )
        if info is None:
            where = (
                "find one with /models search <words>"
                if self.deps.catalogue is not None and provider == DEFAULT_PROVIDER.name
                else f"see {(find_provider(provider) or DEFAULT_PROVIDER).models_page}"
            )
            raise NotFound(
                f"{display_name(provider)} does not know the model `{model_id}`; check the id, "
                f"or {where}."
            )
        pricing = info.pricing
        if pricing.input_per_1m is None or pricing.output_per_1m is None:
            pricing = self.deps.model_settings.price(provider, model_id) or pricing
        new = NewModel(
            provider=provider,
            model_id=model_id,
            input_nano_per_1m=price_to_nano(pricing.input_per_1m),
            output_nano_per_1m=price_to_nano(pricing.output_per_1m),
            cached_input_nano_per_1m=price_to_nano(pricing.cached_input_per_1m),
            added_by=ctx.user_id,
        )
        async with self.deps.store.transaction() as tx:
            old = await tx.allowlist.get(ws_id, model_id)
            await tx.allowlist.add(ws_id, new)
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.MODEL_ADD,
                target=f"model:{model_id}",
                old=_prices(old),
                new=_prices(new),
            )
            await tx.allowlist.mark_available(ws_id, model_id, now=self.deps.clock())
            ws = await tx.workspaces.get(ws_id)
        is_default = ws is not None and ws.default_model == model_id
        return ModelEntry(model_id, provider, pricing, is_default)

    async def remove_model(self, ctx: Invocation, model_id: str) -> bool:
        """Remove ``model_id``; returns True when it was the default (now cleared)."""
        permissions.require_admin(self.deps.settings, ctx, "change the model allowlist")
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            ws = await tx.workspaces.get(ws_id)
            was_default = ws is not None and ws.default_model == model_id
            old = await tx.allowlist.get(ws_id, model_id)
            # The store clears the default in the same transaction when it was this model.
            if old is None or not await tx.allowlist.remove(ws_id, model_id):
                raise NotFound(f"`{model_id}` is not on this workspace's allowlist; see /models.")
            # Channels that defaulted to it follow the workspace's default again.
            await tx.policies.clear_model(ws_id, model_id)
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.MODEL_REMOVE,
                target=f"model:{model_id}",
                old=_prices(old),
                new=None,
            )
        return was_default

    async def set_default_model(
        self, ctx: Invocation, model_id: str | None, *, channel: bool = False
    ) -> bool:
        """Set the workspace's default model, or with ``channel`` this channel's (``None``:
        the channel follows the workspace's again); False when there was nothing to clear."""
        permissions.require_admin(self.deps.settings, ctx, "change the default model")
        if model_id is None and not channel:
            raise ModelNotAllowed("Name the model to make the default: /models default <id>.")
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            if model_id is not None and await tx.allowlist.get(ws_id, model_id) is None:
                raise ModelNotAllowed(
                    f"`{model_id}` is not on this workspace's allowlist; add it first with "
                    f"/models add {model_id}."
                )
            if channel:
                policy = await tx.policies.for_chat(ws_id, ctx.channel_id, ctx.user_id)
                old, target = policy.channel_model, audit.channel_target(ctx.channel_id)
                if old is None and model_id is None:
                    return False
                await tx.policies.set_model(ws_id, ctx.channel_id, model_id, by=ctx.user_id)
            else:
                ws = await tx.workspaces.get(ws_id)
                old, target = (ws.default_model if ws else None), audit.WORKSPACE
                await tx.workspaces.set_default_model(ws_id, model_id)
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.MODEL_DEFAULT,
                target=target,
                old=old,
                new=model_id,
            )
        return True


# -- texts ------------------------------------------------------------------------------------


def models_text(entries: list[ModelEntry], catalogue: Catalogue | None) -> str:
    if not entries:
        return (
            "No models are allowed in this workspace yet; an admin can add one with "
            "/models add <id> (see /models recommended)."
        )
    lines = ["Models allowed here (USD per 1M tokens, in / out):"]
    for e in entries:
        mark = " — default" if e.is_default else ""
        mark += allowlist_note(catalogue, e.model_id, e.unavailable, display_name(e.provider))
        lines.append(
            f"• `{e.model_id}` {format_price(e.pricing.input_per_1m)} / "
            f"{format_price(e.pricing.output_per_1m)}{mark}"
        )
    if not any(e.is_default for e in entries):
        lines.append("No default model is set; an admin can pick one with /models default <id>.")
    return "\n".join(lines)


def recommended_text(models: list[RecommendedModel]) -> str:
    lines = ["Recommended models (USD per 1M tokens, in / out / cached in):"]
    for m in models:
        cached = (
            f" / {format_price(m.pricing.cached_input_per_1m)}"
            if m.pricing.cached_input_per_1m is not None
            else ""
        )
        provider = "" if m.provider == DEFAULT_PROVIDER.name else f" ({display_name(m.provider)})"
        lines.append(
            f"• `{m.model_id}`{provider} {format_price(m.pricing.input_per_1m)} / "
            f"{format_price(m.pricing.output_per_1m)}{cached}"
        )
    return "\n".join(lines)


def added_text(entry: ModelEntry) -> str:
    return (
        f"Added `{entry.model_id}` ({format_price(entry.pricing.input_per_1m)} in / "
        f"{format_price(entry.pricing.output_per_1m)} out per 1M tokens)."
    )


def default_text(model_id: str | None, *, channel: bool, changed: bool) -> str:
    if not channel:
        return f"`{model_id}` is now the default model."
    if model_id is not None:
        return f"`{model_id}` is now this channel's default model (chats here without --model)."
    if changed:
        return "This channel now uses the workspace's default model."
    return "This channel had no default model of its own."


def removed_text(model_id: str, was_default: bool) -> str:
    extra = " It was the default; set a new one with /models default <id>." if was_default else ""
    return f"Removed `{model_id}`.{extra}"
