"""Multi-workspace install: bolt's OAuth flow, with installations and states in our database.

The installation store keeps bot tokens Fernet-encrypted (like provider keys). Authorization
reads the installation (cached briefly) and builds bolt's ``AuthorizeResult`` from it, with no
``auth.test`` call: bolt's stock authorizer calls ``auth.test`` on every request, which would be
a Web API call before the ack. Single-workspace mode calls ``auth.test`` once, at start-up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from logging import Logger, getLogger
from typing import Any

from pydantic import SecretStr
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.core.ports import SlackInstallationRecord, Store, Vault

log = getLogger(__name__)

#: How long a process trusts a cached installation; an uninstall here clears it at once.
INSTALLATION_CACHE_SECONDS = 60.0


def _naive(moment: datetime | float | int | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, int | float):
        return datetime.fromtimestamp(moment, UTC).replace(tzinfo=None)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _scopes(scopes: Any) -> str:
    return ",".join(scopes) if isinstance(scopes, list | tuple) else str(scopes or "")


class DatabaseInstallationStore(AsyncInstallationStore):
    """Bot installations, one per (enterprise, team), tokens encrypted."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        client_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.vault = vault
        self.client_id = client_id
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[Bot, float]] = {}

    @property
    def logger(self) -> Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await self.async_save_bot(installation.to_bot(), installer=installation.user_id)

    async def async_save_bot(self, bot: Bot, *, installer: str | None = None) -> None:
        if not bot.bot_token:
            raise ValueError("routerbot needs a bot token; the installation has none")
        row = SlackInstallationRecord(
            client_id=self.client_id,
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id or "",
            enterprise_name=bot.enterprise_name,
            team_id=bot.team_id or "",
            team_name=bot.team_name,
            is_enterprise_install=bool(bot.is_enterprise_install),
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=_scopes(bot.bot_scopes),
            bot_token=self.vault.encrypt(SecretStr(bot.bot_token)),
            bot_refresh_token=(
                self.vault.encrypt(SecretStr(bot.bot_refresh_token))
                if bot.bot_refresh_token
                else None
            ),
            bot_token_expires_at=_naive(bot.bot_token_expires_at),
            installer_user_id=installer,
            installed_at=_naive(bot.installed_at) or datetime.now(UTC).replace(tzinfo=None),
        )
        async with self.store.transaction() as tx:
            await tx.installations.save(row)
        self._cache.pop((bot.enterprise_id or "", bot.team_id or ""), None)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        if is_enterprise_install:
            team_id = None
        key = (enterprise_id or "", team_id or "")
        hit = self._cache.get(key)
        if hit is not None and hit[1] > self.clock():
            return hit[0]
        async with self.store.transaction() as tx:
            row = await tx.installations.find(
                client_id=self.client_id, enterprise_id=enterprise_id, team_id=team_id
            )
        if row is None:
            return None  # not cached: an install on another process must work at once
        bot = self._to_bot(row)
        self._cache[key] = (bot, self.clock() + INSTALLATION_CACHE_SECONDS)
        return bot

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        bot = await self.async_find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        if bot is None:
            return None
        return Installation(
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            enterprise_name=bot.enterprise_name,
            team_id=bot.team_id,
            team_name=bot.team_name,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            user_id=user_id or "",
            is_enterprise_install=bot.is_enterprise_install,
            installed_at=bot.installed_at,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with self.store.transaction() as tx:
            await tx.installations.delete(
                client_id=self.client_id, enterprise_id=enterprise_id, team_id=team_id
            )
        self._cache.pop((enterprise_id or "", team_id or ""), None)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # only the bot installation exists; user tokens are never kept
            await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    def _to_bot(self, row: SlackInstallationRecord) -> Bot:
        refresh = self.vault.decrypt(row.bot_refresh_token) if row.bot_refresh_token else None
        return Bot(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id or None,
            enterprise_name=row.enterprise_name,
            team_id=row.team_id or None,
            team_name=row.team_name,
            bot_token=self.vault.decrypt(row.bot_token).get_secret_value(),
            bot_id=row.bot_id or "",
            bot_user_id=row.bot_user_id or "",
            bot_scopes=row.bot_scopes,
            bot_refresh_token=refresh.get_secret_value() if refresh else None,
            bot_token_expires_at=(
                int(row.bot_token_expires_at.replace(tzinfo=UTC).timestamp())
                if row.bot_token_expires_at
                else None
            ),
            is_enterprise_install=row.is_enterprise_install,
            installed_at=row.installed_at.replace(tzinfo=UTC).timestamp(),
        )


class DatabaseStateStore(AsyncOAuthStateStore):
    """One-time OAuth states shared by every process (the browser may land on any of them)."""

    def __init__(self, store: Store, expiration_seconds: int = 600) -> None:
        self.store = store
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = uuid.uuid4().hex
        expire_at = datetime.now(UTC) + timedelta(seconds=self.expiration_seconds)
        async with self.store.transaction() as tx:
            await tx.installations.issue_state(state, expire_at)
        return state

    async def async_consume(self, state: str) -> bool:
        async with self.store.transaction() as tx:
            return await tx.installations.consume_state(state)


class InstallationAuthorize(AsyncAuthorize):
    """Authorizes a request from the stored installation, without calling ``auth.test``."""

    def __init__(self, installation_store: DatabaseInstallationStore) -> None:
        self.installation_store = installation_store

    async def __call__(
        self,
        *,
        context: Any,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **_actor: Any,
    ) -> AuthorizeResult | None:
        bot = await self.installation_store.async_find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=getattr(context, "is_enterprise_install", False),
        )
        if bot is None:
            return None
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            team=bot.team_name,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.bot_token,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
        )


class StaticAuthorize(AsyncAuthorize):
    """Single-workspace mode: the bot token and identity checked once with ``auth.test``."""

    def __init__(self, *, token: str, auth_test: dict[str, Any]) -> None:
        self.token = token
        self.auth_test = auth_test

    async def __call__(
        self,
        *,
        context: Any,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **_actor: Any,
    ) -> AuthorizeResult | None:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id or self.auth_test.get("team_id"),
            team=self.auth_test.get("team"),
            bot_user_id=self.auth_test.get("user_id"),
            bot_id=self.auth_test.get("bot_id"),
            bot_token=self.token,
            user_id=user_id,
        )
