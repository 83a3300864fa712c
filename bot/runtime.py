"""Assembles a running core from settings: database, key vault, adapters, ProviderService."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adapters.base import ProviderAdapter
from adapters.registry import build_adapters
from bot.config import Settings
from bot.core.budgets import DatabaseBudgetGuard
from bot.core.dispatch import Dispatcher
from bot.core.errors import ConfigurationError
from bot.core.pricing import ModelSettings
from bot.core.service import BudgetGuard, ProviderService
from storage.crypto import KeyVault, load_or_create_key_file
from storage.db import Database
from storage.migrate import ensure_schema

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: KeyVault
    adapters: dict[str, ProviderAdapter]
    service: ProviderService
    dispatcher: Dispatcher

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()
        await self.db.dispose()


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


def budget_guard(settings: Settings, db: Database) -> BudgetGuard:
    """Spend limits enforced through the shared database (holds across worker processes)."""
    return DatabaseBudgetGuard(db)


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
    adapters = build_adapters(
        settings.openrouter_base_url,
        settings.fireworks_base_url,
        app_url=settings.routerbot_app_url,
        app_title=settings.routerbot_app_title,
    )
    service = ProviderService(
        settings=settings,
        db=db,
        vault=vault,
        adapters=adapters,
        model_settings=model_settings,
        budgets=budget_guard(settings, db),
    )
    return Runtime(settings, db, vault, adapters, service, Dispatcher(service)), warning
