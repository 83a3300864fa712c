"""Workspaces: the caller's tenant id, created and seeded on first use, cached per process.

A new workspace starts with the recommended OpenRouter models allowlisted and the first of them
as its default (SPEC §1). Creation is race-safe across processes: only the process whose insert
won seeds.
"""

from __future__ import annotations

from adapters.registry import DEFAULT_PROVIDER
from bot.core.deps import Deps
from bot.core.ports import NewModel, UnitOfWork
from bot.core.pricing import price_to_nano
from bot.core.replies import Invocation


class Workspaces:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._ids: dict[tuple[str, str], int] = {}

    async def id_of(self, ctx: Invocation) -> int:
        """The internal id of the caller's workspace, created (and seeded) on first use."""
        cache_key = (ctx.platform, ctx.workspace_id)
        cached = self._ids.get(cache_key)
        if cached is not None:
            return cached
        async with self.deps.store.transaction() as tx:
            ws, created = await tx.workspaces.get_or_create(
                platform=ctx.platform, external_id=ctx.workspace_id, name=ctx.workspace_name
            )
            if created:
                await self._seed(tx, ws.id)
        self._ids[cache_key] = ws.id
        return ws.id

    async def _seed(self, tx: UnitOfWork, workspace_id: int) -> None:
        recommended = self.deps.model_settings.recommended(DEFAULT_PROVIDER.name)
        await tx.allowlist.add_many(
            workspace_id,
            [
                NewModel(
                    provider=m.provider,
                    model_id=m.model_id,
                    input_nano_per_1m=price_to_nano(m.pricing.input_per_1m),
                    output_nano_per_1m=price_to_nano(m.pricing.output_per_1m),
                    cached_input_nano_per_1m=price_to_nano(m.pricing.cached_input_per_1m),
                )
                for m in recommended
            ],
        )
        if recommended:
            await tx.workspaces.set_default_model(workspace_id, recommended[0].model_id)
