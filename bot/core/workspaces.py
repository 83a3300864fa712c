"""Workspaces: the caller's tenant id, created and seeded on first use, cached per process.

A new workspace starts with the recommended OpenRouter models allowlisted (at the catalogue's
current prices) and the first of them the provider still serves as its default (SPEC §1, §4).
Creation is race-safe across processes: only the process whose insert won seeds.
"""

from __future__ import annotations

from adapters.registry import DEFAULT_PROVIDER
from bot.core.catalogue.sync import before_new_workspace, seed_models
from bot.core.deps import Deps
from bot.core.ports import UnitOfWork
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
        await before_new_workspace(
            self.deps.catalogue, self.deps.store, ctx.platform, ctx.workspace_id
        )
        async with self.deps.store.transaction() as tx:
            ws, created = await tx.workspaces.get_or_create(
                platform=ctx.platform, external_id=ctx.workspace_id, name=ctx.workspace_name
            )
            if created:
                await self._seed(tx, ws.id)
        self._ids[cache_key] = ws.id
        return ws.id

    async def _seed(self, tx: UnitOfWork, workspace_id: int) -> None:
        # The recommended models at today's prices; the default is the first still served.
        recommended = self.deps.model_settings.recommended(DEFAULT_PROVIDER.name)
        seed = seed_models(self.deps.catalogue, recommended)
        await tx.allowlist.add_many(workspace_id, seed.models)
        for model_id, why in seed.unavailable:
            await tx.allowlist.mark_unavailable(
                workspace_id, model_id, reason=why, now=self.deps.clock()
            )
        if seed.default is not None:
            await tx.workspaces.set_default_model(workspace_id, seed.default)
