"""ProviderService: the core's concerns assembled over one set of dependencies.

Each concern lives in its own module (``workspaces``, ``keys``, ``allowlist``, ``chat``,
``spend``, ``policies``, ``audit``); this class only builds them and keeps the few entry
points front-ends and operators reach for. Every admin-only action is checked by its
concern, on the server side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from adapters.base import ProviderAdapter
from bot.config import Settings
from bot.core import permissions
from bot.core.allowlist import Allowlist
from bot.core.audit import Audit
from bot.core.catalogue import Catalogue
from bot.core.chat.run import Chats
from bot.core.deps import Deps, utcnow
from bot.core.keys import Keys
from bot.core.policies import Policies
from bot.core.ports import Store, Vault
from bot.core.pricing import ModelSettings
from bot.core.replies import Invocation
from bot.core.spend.costs import Spend
from bot.core.spend.guard import BudgetGuard
from bot.core.workspaces import Workspaces


class ProviderService:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        vault: Vault,
        adapters: Mapping[str, ProviderAdapter],
        model_settings: ModelSettings,
        budgets: BudgetGuard | None = None,
        clock: Callable[[], datetime] = utcnow,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.deps = Deps(
            settings, store, vault, adapters, model_settings, budgets, clock, catalogue
        )
        self.workspaces = Workspaces(self.deps)
        self.keys = Keys(self.deps, self.workspaces)
        self.allowlist = Allowlist(self.deps, self.workspaces, self.keys)
        self.chats = Chats(self.deps, self.workspaces, self.keys)
        self.spend = Spend(self.deps, self.workspaces)
        self.policies = Policies(self.deps, self.workspaces)
        self.audit = Audit(self.deps, self.workspaces)

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    @property
    def catalogue(self) -> Catalogue | None:
        return self.deps.catalogue

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.deps.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.deps.clock = clock

    @property
    def budgets(self) -> BudgetGuard | None:
        return self.deps.budgets

    @budgets.setter
    def budgets(self, guard: BudgetGuard | None) -> None:
        self.deps.budgets = guard

    async def workspace_id(self, ctx: Invocation) -> int:
        return await self.workspaces.id_of(ctx)

    def is_admin(self, ctx: Invocation) -> bool:
        return permissions.is_admin(self.deps.settings, ctx)
