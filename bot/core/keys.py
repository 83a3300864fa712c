"""Provider API keys: verified with the provider, stored encrypted, shown only masked.

Setting, checking and clearing a key is admin-only (checked here); setting and clearing are
audited, with the masked key only. A workspace without its own
key uses the operator's fallback key for that provider, if one is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import SecretStr

from adapters.base import KeyInfo
from adapters.errors import AuthenticationError, ProviderError
from adapters.registry import display_name, provider_for_key
from bot.core import audit, permissions
from bot.core.deps import Deps
from bot.core.errors import NoApiKey, UserFacingError
from bot.core.format import format_usd
from bot.core.messages import provider_sentence
from bot.core.ports import KeyDecryptError, StoredKey, mask_key
from bot.core.replies import Invocation
from bot.core.text import clean_key, looks_like_key
from bot.core.workspaces import Workspaces

log = logging.getLogger(__name__)

UNDECRYPTABLE = (
    "This workspace's stored API key cannot be decrypted with the server's "
    "ROUTERBOT_SECRET_KEY; an admin should set it again with /apikey."
)


@dataclass(frozen=True, slots=True)
class KeyStatus:
    provider: str
    masked: str
    info: KeyInfo | None
    #: Why ``info`` is missing (provider unreachable), if it is.
    problem: str | None = None
    fallback: bool = False


class Keys:
    def __init__(self, deps: Deps, workspaces: Workspaces) -> None:
        self.deps = deps
        self.workspaces = workspaces

    async def resolve(
        self, workspace_id: int, provider: str, *, required: bool = True
    ) -> SecretStr | None:
        async with self.deps.store.transaction() as tx:
            stored = await tx.keys.get(workspace_id, provider)
        return self.usable(stored, provider, required=required)

    def usable(
        self, stored: StoredKey | None, provider: str, *, required: bool = True
    ) -> SecretStr | None:
        """The stored key decrypted, else the operator's fallback key."""
        if stored is not None:
            try:
                return self.deps.vault.decrypt(stored.ciphertext)
            except KeyDecryptError:
                raise UserFacingError(UNDECRYPTABLE) from None
        fallback = self.deps.settings.fallback_key(provider)
        if fallback is None and required:
            raise NoApiKey(
                f"No {display_name(provider)} API key is set for this "
                "workspace; a workspace admin can set one with /apikey."
            )
        return fallback

    async def set_key(self, ctx: Invocation, key: SecretStr, provider: str | None) -> KeyStatus:
        permissions.require_admin(self.deps.settings, ctx, "set the API key")
        plain = clean_key(key.get_secret_value())
        if not looks_like_key(plain):  # e.g. a character no HTTP header can carry
            raise UserFacingError("That does not look like an API key; nothing was stored.")
        key = SecretStr(plain)
        provider = provider or provider_for_key(plain)
        adapter = self.deps.adapter(provider)
        name = display_name(provider)
        try:
            info = await adapter.check_key(key)
        except AuthenticationError:
            raise UserFacingError(f"{name} rejected that key; nothing was stored.") from None
        except ProviderError as exc:
            reason = provider_sentence(exc).rstrip(".")
            raise UserFacingError(
                f"Could not verify the key with {name}: {reason}; nothing was stored."
            ) from None
        ws_id = await self.workspaces.id_of(ctx)
        masked = mask_key(plain)
        async with self.deps.store.transaction() as tx:
            old = await tx.keys.get(ws_id, provider)
            await tx.keys.set(
                ws_id,
                provider=provider,
                ciphertext=self.deps.vault.encrypt(key),
                masked=masked,
                set_by=ctx.user_id,
            )
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.KEY_SET,
                target=f"key:{provider}",
                old=old.masked if old is not None else None,
                new=masked,
            )
        log.info("api key set for workspace %s provider %s by %s", ws_id, provider, ctx.user_id)
        return KeyStatus(provider, masked, info)

    async def key_status(self, ctx: Invocation) -> list[KeyStatus]:
        permissions.require_admin(self.deps.settings, ctx, "see the API key status")
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            stored = {k.provider: k for k in await tx.keys.all(ws_id)}
        out: list[KeyStatus] = []
        for provider in self.deps.adapters:
            row = stored.get(provider)
            if row is None and self.deps.settings.fallback_key(provider) is None:
                continue
            masked = row.masked if row is not None else "the server's fallback key"
            try:
                key = self.usable(row, provider)
                assert key is not None
                info: KeyInfo | None = await self.deps.adapter(provider).check_key(key)
                problem = None
            except ProviderError as exc:
                info, problem = None, provider_sentence(exc)
            except UserFacingError as exc:
                info, problem = None, exc.message
            out.append(KeyStatus(provider, masked, info, problem, fallback=row is None))
        return out

    async def clear_key(self, ctx: Invocation, provider: str | None) -> list[str]:
        permissions.require_admin(self.deps.settings, ctx, "clear the API key")
        ws_id = await self.workspaces.id_of(ctx)
        providers = [provider] if provider else list(self.deps.adapters)
        cleared: list[str] = []
        async with self.deps.store.transaction() as tx:
            for name in providers:
                old = await tx.keys.get(ws_id, name)
                if old is None or not await tx.keys.delete(ws_id, name):
                    continue
                cleared.append(name)
                await audit.record(
                    tx,
                    self.deps,
                    ctx,
                    ws_id,
                    action=audit.KEY_CLEAR,
                    target=f"key:{name}",
                    old=old.masked,
                    new=None,
                )
        return cleared


# -- texts ------------------------------------------------------------------------------------


def limit_text(status: KeyStatus) -> str:
    info = status.info
    if info is None:
        return ""
    if info.limit is None:
        return "; the key has no credit limit"
    remaining = info.limit_remaining if info.limit_remaining is not None else info.limit
    return f"; remaining limit {format_usd(remaining)} of {format_usd(info.limit)}"


def saved_text(status: KeyStatus) -> str:
    name = display_name(status.provider)
    return f"Saved the {name} key {status.masked} for this workspace{limit_text(status)}."


def status_text(statuses: list[KeyStatus]) -> str:
    if not statuses:
        return "No API key is set for this workspace; set one with /apikey set <key>."
    lines = []
    for st in statuses:
        name = display_name(st.provider)
        if st.problem:
            lines.append(f"{name}: {st.masked} (could not check it: {st.problem})")
        else:
            lines.append(f"{name}: {st.masked}{limit_text(st)}")
    return "\n".join(lines)


def cleared_text(cleared: list[str]) -> str:
    if not cleared:
        return "There was no key to remove."
    names = " and ".join(display_name(p) for p in cleared)
    return f"Removed the {names} key from this workspace."
