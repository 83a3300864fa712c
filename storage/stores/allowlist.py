"""A workspace's allowlist of models, with the pricing known when each was added."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import AllowedModel, Workspace, utcnow
from storage.records import NewModel
from storage.stores._sql import upsert_insert


async def list_models(session: AsyncSession, *, workspace_id: int) -> list[AllowedModel]:
    """The allowlist in the order it was built (seeded models first, in file order)."""
    result = await session.scalars(
        select(AllowedModel)
        .where(col(AllowedModel.workspace_id) == workspace_id)
        .order_by(col(AllowedModel.created_at), col(AllowedModel.id))
    )
    return list(result.all())


async def get_model(
    session: AsyncSession, *, workspace_id: int, model_id: str
) -> AllowedModel | None:
    result = await session.scalars(
        select(AllowedModel).where(
            col(AllowedModel.workspace_id) == workspace_id,
            col(AllowedModel.model_id) == model_id,
        )
    )
    return result.first()


async def add_model(
    session: AsyncSession,
    *,
    workspace_id: int,
    provider: str,
    model_id: str,
    input_nano_per_1m: int | None,
    output_nano_per_1m: int | None,
    cached_input_nano_per_1m: int | None,
    added_by: str | None = None,
) -> AllowedModel:
    """Allow a model; if it is already allowed, refresh its provider and pricing.

    The original ``added_by`` and ``created_at`` are kept, so re-adding does not move it in
    the list.
    """
    stmt = upsert_insert(session, AllowedModel).values(
        workspace_id=workspace_id,
        provider=provider,
        model_id=model_id,
        input_nano_per_1m=input_nano_per_1m,
        output_nano_per_1m=output_nano_per_1m,
        cached_input_nano_per_1m=cached_input_nano_per_1m,
        added_by=added_by,
        created_at=utcnow(),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "model_id"],
        set_={
            "provider": stmt.excluded.provider,
            "input_nano_per_1m": stmt.excluded.input_nano_per_1m,
            "output_nano_per_1m": stmt.excluded.output_nano_per_1m,
            "cached_input_nano_per_1m": stmt.excluded.cached_input_nano_per_1m,
        },
    )
    await session.execute(stmt)
    result = await session.scalars(
        select(AllowedModel)
        .where(
            col(AllowedModel.workspace_id) == workspace_id,
            col(AllowedModel.model_id) == model_id,
        )
        # The identity map may hold this row with the old prices.
        .execution_options(populate_existing=True)
    )
    return result.one()


async def add_models_bulk(
    session: AsyncSession, *, workspace_id: int, models: Sequence[NewModel]
) -> None:
    """Seed an allowlist; models already present are left as they are."""
    if not models:
        return
    now = utcnow()
    rows = [
        {
            "workspace_id": workspace_id,
            "provider": m.provider,
            "model_id": m.model_id,
            "input_nano_per_1m": m.input_nano_per_1m,
            "output_nano_per_1m": m.output_nano_per_1m,
            "cached_input_nano_per_1m": m.cached_input_nano_per_1m,
            "added_by": m.added_by,
            "created_at": now,
        }
        for m in models
    ]
    # One multi-row statement: ids follow list order, which list_models relies on.
    stmt = (
        upsert_insert(session, AllowedModel)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["workspace_id", "model_id"])
    )
    await session.execute(stmt)


async def remove_model(session: AsyncSession, *, workspace_id: int, model_id: str) -> bool:
    """Disallow a model; if it was the workspace default, the default is cleared too."""
    removed = await session.scalars(
        delete(AllowedModel)
        .where(
            col(AllowedModel.workspace_id) == workspace_id,
            col(AllowedModel.model_id) == model_id,
        )
        .returning(col(AllowedModel.id))
    )
    if removed.first() is None:
        return False
    await session.execute(
        update(Workspace)
        .where(col(Workspace.id) == workspace_id, col(Workspace.default_model) == model_id)
        .values(default_model=None)
        .execution_options(synchronize_session="fetch")
    )
    return True
