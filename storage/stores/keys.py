"""Provider API keys per workspace, stored only as Fernet ciphertext plus a mask."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.crypto import KeyVault
from storage.models import ProviderKey, utcnow
from storage.stores._sql import upsert_insert


async def set_key(
    session: AsyncSession,
    *,
    workspace_id: int,
    provider: str,
    ciphertext: bytes,
    masked: str,
    set_by: str | None,
) -> None:
    """Store (or replace) the workspace's key for ``provider``; ``ciphertext`` from KeyVault."""
    values = {
        "ciphertext": ciphertext,
        "masked": masked,
        "set_by": set_by,
        "created_at": utcnow(),
    }
    stmt = (
        upsert_insert(session, ProviderKey)
        .values(workspace_id=workspace_id, provider=provider, **values)
        .on_conflict_do_update(index_elements=["workspace_id", "provider"], set_=values)
    )
    await session.execute(stmt)


async def get_key(session: AsyncSession, *, workspace_id: int, provider: str) -> ProviderKey | None:
    result = await session.scalars(
        select(ProviderKey)
        .where(col(ProviderKey.workspace_id) == workspace_id, col(ProviderKey.provider) == provider)
        .execution_options(populate_existing=True)
    )
    return result.first()


async def list_keys(session: AsyncSession, *, workspace_id: int) -> list[ProviderKey]:
    """Every key of a workspace, by provider name."""
    result = await session.scalars(
        select(ProviderKey)
        .where(col(ProviderKey.workspace_id) == workspace_id)
        .order_by(col(ProviderKey.provider))
    )
    return list(result.all())


async def delete_key(session: AsyncSession, *, workspace_id: int, provider: str) -> bool:
    removed = await session.scalars(
        delete(ProviderKey)
        .where(col(ProviderKey.workspace_id) == workspace_id, col(ProviderKey.provider) == provider)
        .returning(col(ProviderKey.id))
    )
    return removed.first() is not None


async def rotate_keys(session: AsyncSession, *, vault: KeyVault) -> int:
    """Re-encrypt every stored key with the vault's first key; returns how many were rewritten.

    An operator action across ALL workspaces (the one deliberate exception to workspace
    scoping): run it after putting a new key first in ``ROUTERBOT_SECRET_KEY``. Raises
    ``KeyDecryptError`` (and the transaction rolls back) if any key cannot be decrypted.
    """
    rows = (await session.execute(select(col(ProviderKey.id), col(ProviderKey.ciphertext)))).all()
    rotated = 0
    for key_id, old in rows:
        new = vault.rotate(old)
        # Compare-and-swap: a key replaced concurrently by /apikey set is not overwritten.
        changed = await session.scalars(
            update(ProviderKey)
            .where(col(ProviderKey.id) == key_id, col(ProviderKey.ciphertext) == old)
            .values(ciphertext=new)
            .returning(col(ProviderKey.id))
            .execution_options(synchronize_session=False)
        )
        if changed.first() is not None:
            rotated += 1
    return rotated
