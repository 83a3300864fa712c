"""Workspaces (tenants): lookup, race-safe creation, and the default model."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Workspace, utcnow
from storage.stores._sql import upsert_insert


async def get_workspace(
    session: AsyncSession, *, platform: str, external_id: str
) -> Workspace | None:
    result = await session.scalars(
        select(Workspace).where(
            col(Workspace.platform) == platform, col(Workspace.external_id) == external_id
        )
    )
    return result.first()


async def get_workspace_by_id(session: AsyncSession, *, workspace_id: int) -> Workspace | None:
    return await session.get(Workspace, workspace_id)


async def get_or_create_workspace(
    session: AsyncSession, *, platform: str, external_id: str, name: str | None = None
) -> tuple[Workspace, bool]:
    """The workspace for ``(platform, external_id)``, and whether this call created it.

    Safe when several processes see a new workspace at once: the insert is
    ``ON CONFLICT DO NOTHING`` and only the process whose row was inserted gets ``True``
    (so only it seeds the allowlist).
    """
    existing = await get_workspace(session, platform=platform, external_id=external_id)
    if existing is not None:
        # The common path reads only, so SQLite takes no write lock for every message.
        return existing, False
    stmt = (
        upsert_insert(session, Workspace)
        .values(platform=platform, external_id=external_id, name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["platform", "external_id"])
        .returning(col(Workspace.id))
    )
    inserted_id = (await session.execute(stmt)).scalar_one_or_none()
    workspace = await get_workspace(session, platform=platform, external_id=external_id)
    if workspace is None:  # pragma: no cover - the row was inserted or already committed
        raise RuntimeError(f"workspace {platform}:{external_id} vanished after insert")
    return workspace, inserted_id is not None


async def find_workspaces(
    session: AsyncSession, *, external_id: str, platform: str | None = None
) -> list[Workspace]:
    """Workspaces with this external id (on one platform, or on any): for operator commands."""
    stmt = select(Workspace).where(col(Workspace.external_id) == external_id)
    if platform is not None:
        stmt = stmt.where(col(Workspace.platform) == platform)
    result = await session.scalars(stmt.order_by(col(Workspace.platform), col(Workspace.id)))
    return list(result.all())


async def set_default_model(
    session: AsyncSession, *, workspace_id: int, model_id: str | None
) -> None:
    """Set (or clear, with ``None``) the default; checking the allowlist is the caller's job."""
    await session.execute(
        update(Workspace)
        .where(col(Workspace.id) == workspace_id)
        .values(default_model=model_id)
        .execution_options(synchronize_session="fetch")
    )
