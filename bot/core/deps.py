"""What every concern of the core shares: settings, the storage port, the vault, the provider
adapters, the pricing file, the budget guard, the clock and this process's name as the owner
of its leases.

One mutable holder, so that swapping the clock or the guard (tests turning the month) reaches
every concern at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from adapters.base import ProviderAdapter
from bot.config import Settings
from bot.core.errors import UserFacingError
from bot.core.ports import Store, Vault
from bot.core.pricing import ModelSettings

if TYPE_CHECKING:
    from bot.core.catalogue import Catalogue
    from bot.core.spend.guard import BudgetGuard


def utcnow() -> datetime:
    """Naive UTC now: how the core and storage keep times."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Deps:
    settings: Settings
    store: Store
    vault: Vault
    adapters: Mapping[str, ProviderAdapter]
    model_settings: ModelSettings
    budgets: BudgetGuard | None = None
    clock: Callable[[], datetime] = utcnow
    #: The followed provider's catalogue, one per process (None: no catalogue checks).
    catalogue: Catalogue | None = None
    #: This process, as the owner of its leases (budget holds, chats in flight).
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def adapter(self, provider: str) -> ProviderAdapter:
        adapter = self.adapters.get(provider)
        if adapter is None:
            raise UserFacingError(f"The provider `{provider}` is not configured on this server.")
        return adapter
