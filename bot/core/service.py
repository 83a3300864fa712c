"""ProviderService: the core's concerns assembled over one set of dependencies.

Each concern lives in its own module (``workspaces``, ``keys``, ``allowlist``, ``chat``,
``spend``, ``policies``, ``audit``; the chats in flight, their settling and the keeper of this
process's leases in ``chat``); this class only builds them and keeps the few entry points
front-ends and operators reach for. Every admin-only action is checked by its concern, on the
server side.
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
from bot.core.chat.flights import FlightLog
from bot.core.chat.keeper import LeaseKeeper
from bot.core.chat.run import Chats
from bot.core.chat.settle import Settler
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
        owner: str | None = None,
    ) -> None:
        self.deps = Deps(
            settings, store, vault, adapters, model_settings, budgets, clock, catalogue
        )
        if owner is not None:
            self.deps.owner = owner
        self.workspaces = Workspaces(self.deps)
        self.keys = Keys(self.deps, self.workspaces)
        self.allowlist = Allowlist(self.deps, self.workspaces, self.keys)
        self.flights = FlightLog(self.deps)
        self.chats = Chats(self.deps, self.workspaces, self.keys, self.flights)
        self.spend = Spend(self.deps, self.workspaces)
        self.policies = Policies(self.deps, self.workspaces)
        self.audit = Audit(self.deps, self.workspaces)
        self.settler = Settler(self.deps, self.keys, self.flights)
        #: Started by the long-running front-ends and the console (``Runtime.start``).
        self.keeper = LeaseKeeper(
            self.flights, self.settler, every=settings.routerbot_lease_renew_seconds
        )

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
