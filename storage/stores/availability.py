"""Allowlisted models against the provider's catalogue: their current prices, and whether the
provider still serves them.

``list_allowlisted`` without a workspace reads every workspace's allowlist: like
``rotate_keys`` it serves an operator action (``routerbot models sync``, and the daily
refresh of long-running processes); everything else here is scoped by ``workspace_id``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import AllowedModel


async def list_allowlisted(
    session: AsyncSession, *, provider: str, workspace_id: int | None = None
) -> list[AllowedModel]:
    """The allowlisted models of ``provider``, of one workspace or of all of them."""
    stmt = select(AllowedModel).where(col(AllowedModel.provider) == provider)
    if workspace_id is not None:
        stmt = stmt.where(col(AllowedModel.workspace_id) == workspace_id)
    result = await session.scalars(
        stmt.order_by(col(AllowedModel.workspace_id), col(AllowedModel.id))
    )
    return list(result.all())


def _row(workspace_id: int, model_id: str) -> Update:
    return update(AllowedModel).where(
        col(AllowedModel.workspace_id) == workspace_id,
        col(AllowedModel.model_id) == model_id,
    )


async def set_model_pricing(
    session: AsyncSession,
    *,
    workspace_id: int,
    model_id: str,
    input_nano_per_1m: int | None,
    output_nano_per_1m: int | None,
    cached_input_nano_per_1m: int | None,
) -> None:
    """The provider's current prices (nano-USD per 1M tokens)."""
    await session.execute(
        _row(workspace_id, model_id).values(
            input_nano_per_1m=input_nano_per_1m,
            output_nano_per_1m=output_nano_per_1m,
            cached_input_nano_per_1m=cached_input_nano_per_1m,
        )
    )


async def mark_unavailable(
    session: AsyncSession, *, workspace_id: int, model_id: str, reason: str, now: datetime
) -> bool:
    """The provider no longer serves the model; False when it was already marked."""
    result = await session.execute(
        _row(workspace_id, model_id)
        .where(col(AllowedModel.unavailable_reason).is_(None))
        .values(unavailable_reason=reason, unavailable_since=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def mark_available(
    session: AsyncSession, *, workspace_id: int, model_id: str, now: datetime
) -> None:
    """The provider serves the model (it just said so): clear any mark, note when."""
    await session.execute(
        _row(workspace_id, model_id).values(
            unavailable_reason=None, unavailable_since=None, confirmed_at=now
        )
    )
