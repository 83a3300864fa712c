"""Assembles a running core from settings: database, key vault, adapters, ProviderService, and
the process's model catalogue (refreshed in the background by long-running front-ends).

The composition root: the one place in ``bot`` (with the operator commands) that builds the
concrete storage; front-ends get the core's ports (``runtime.store``, ``runtime.vault``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from adapters.base import ProviderAdapter
from adapters.catalogue import CatalogueReader
from adapters.registry import build_adapters
from bot.config import Settings
from bot.core.catalogue import Catalogue, Snapshot, stop_refresher
from bot.core.catalogue.sync import PROVIDER, sync_allowlists
from bot.core.dispatch import Dispatcher
from bot.core.errors import ConfigurationError
from bot.core.ports import Store, Vault
from bot.core.pricing import ModelSettings
from bot.core.service import ProviderService
from bot.core.spend.guard import BudgetGuard, DatabaseBudgetGuard
from storage import stores
from storage.crypto import KeyVault, generate_key, load_or_create_key_file
from storage.db import Database
from storage.migrate import ensure_schema, upgrade
from storage.sql_store import SqlStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    #: The concrete database, for operator commands and tests; the core and the front-ends
    #: go through ``store``.
    db: Database
    store: Store
    vault: Vault
    adapters: dict[str, ProviderAdapter]
    service: ProviderService
    dispatcher: Dispatcher
    #: OpenRouter's catalogue, one per process (None when the provider cannot list one).
    catalogue: Catalogue | None = None
    _refresher: asyncio.Task[None] | None = field(default=None, repr=False)

    def start_catalogue_refresh(self) -> None:
        """For long-running front-ends: refresh the catalogue now and every 12 hours, the
        allowlists following each refresh. Once per process, whatever calls it again."""
        if self.catalogue is None or self._refresher is not None:
            return
        catalogue, store = self.catalogue, self.store

        async def follow(_snapshot: Snapshot) -> None:
            await sync_allowlists(store, catalogue)

        self._refresher = asyncio.create_task(catalogue.run(on_refresh=follow))

    def start(self) -> None:
        """Start this process's lease keeper (renewals, settling): every front-end that chats
        calls it; several in one process share the one keeper."""
        self.service.keeper.start()

    async def aclose(self) -> None:
        # First: the last sweep settles the chats cancelled at shutdown.
        await self.service.keeper.aclose()
        await stop_refresher(self._refresher)
        self._refresher = None
        for adapter in self.adapters.values():
            await adapter.aclose()
        await self.store.close()


def load_vault(settings: Settings, *, allow_generate: bool) -> tuple[KeyVault, str | None]:
    """The key vault, and a warning to show when a key file had to be created."""
    if settings.routerbot_secret_key is not None:
        try:
            return KeyVault.from_config(settings.routerbot_secret_key.get_secret_value()), None
        except ValueError as exc:
            raise ConfigurationError(f"ROUTERBOT_SECRET_KEY is invalid: {exc}") from None
    path = settings.secret_key_file
    if not allow_generate and not path.exists():
        raise ConfigurationError(
            "ROUTERBOT_SECRET_KEY is not set; generate one with "
            "`routerbot secret-key` and put it in the environment."
        )
    try:
        key, created = load_or_create_key_file(path)
        vault = KeyVault.from_config(key)
    except ValueError as exc:
        # Name the file: the variable is not set, so blaming it would send the operator astray.
        problem = str(exc) if str(path) in str(exc) else f"{path} does not hold a valid Fernet key"
        raise ConfigurationError(
            f"{problem.rstrip('.')}. ROUTERBOT_SECRET_KEY is not set, so routerbot keeps its key "
            "in that file: restore it, or set ROUTERBOT_SECRET_KEY; deleting the file makes a "
            "new key, and stored API keys must then be set again."
        ) from None
    warning = (
        f"No ROUTERBOT_SECRET_KEY was set, so routerbot created {path}; keep that file safe "
        "(it decrypts the stored API keys) or set ROUTERBOT_SECRET_KEY."
        if created
        else None
    )
    return vault, warning


def build_catalogue(adapters: Mapping[str, ProviderAdapter]) -> Catalogue | None:
    """The catalogue of the provider routerbot follows, when its adapter can list one."""
    adapter = adapters.get(PROVIDER)
    if not isinstance(adapter, CatalogueReader):
        return None
    return Catalogue(adapter.list_catalogue)


def budget_guard(settings: Settings, store: Store, owner: str) -> BudgetGuard:
    """Spend limits enforced through the shared database (holds across worker processes),
    each hold a lease of this process (``owner``)."""
    return DatabaseBudgetGuard(
        store, ttl=timedelta(seconds=settings.routerbot_lease_seconds), owner=owner
    )


async def build_runtime(
    settings: Settings,
    *,
    allow_generated_key: bool = False,
    model_settings: ModelSettings | None = None,
) -> tuple[Runtime, str | None]:
    """Everything a front-end needs. Applies pending migrations first."""
    model_settings = model_settings or ModelSettings.load(settings.model_settings_path)
    vault, warning = load_vault(settings, allow_generate=allow_generated_key)
    db = Database(settings.database_url)
    await ensure_schema(db)
    store = SqlStore(db)
    adapters = build_adapters(
        settings.base_urls(),
        app_url=settings.routerbot_app_url,
        app_title=settings.routerbot_app_title,
        transport=settings.routerbot_provider_transport,
    )
    catalogue = build_catalogue(adapters)
    owner = uuid.uuid4().hex
    service = ProviderService(
        settings=settings,
        store=store,
        vault=vault,
        adapters=adapters,
        model_settings=model_settings,
        budgets=budget_guard(settings, store, owner),
        catalogue=catalogue,
        owner=owner,
    )
    dispatcher = Dispatcher(service)
    runtime = Runtime(settings, db, store, vault, adapters, service, dispatcher, catalogue)
    return runtime, warning


async def open_store(settings: Settings) -> SqlStore:
    """The database alone (operator reports), migrated."""
    db = Database(settings.database_url)
    await ensure_schema(db)
    return SqlStore(db)


async def upgrade_database(settings: Settings) -> None:
    await upgrade(settings.database_url)


def new_secret_key() -> str:
    """A new Fernet key for ``ROUTERBOT_SECRET_KEY``."""
    return generate_key()


async def rotate_stored_keys(settings: Settings) -> int:
    """Re-encrypt every stored key with the first ``ROUTERBOT_SECRET_KEY`` (an operator action
    across all workspaces); returns how many were rewritten."""
    vault, _ = load_vault(settings, allow_generate=False)
    db = Database(settings.database_url)
    try:
        await ensure_schema(db)
        async with db.session() as session:
            return await stores.rotate_keys(session, vault=vault)
    finally:
        await db.dispose()
