"""Channel policies (system prompt, default model, chats on or off; ``channel_id == ""`` is
the workspace) and the people whose chats are turned off."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import CompoundSelect, bindparam, delete, literal, null, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import ChannelPolicy, UserAccess, utcnow
from storage.records import ChatPolicy
from storage.stores._sql import upsert_insert

__all__ = [
    "chat_policy",
    "chat_policy_stmt",
    "clear_channel_models",
    "get_policy",
    "policy_from_rows",
    "set_policy",
    "set_user_off",
    "users_off",
]

#: The columns of ``channel_policy`` an admin can set.
POLICY_FIELDS = frozenset({"system_prompt", "default_model", "chats_off"})


@cache
def chat_policy_stmt() -> CompoundSelect[Any]:
    policy = ChannelPolicy.__table__  # type: ignore[attr-defined]  # set by SQLModel
    access = UserAccess.__table__  # type: ignore[attr-defined]
    return union_all(
        select(
            policy.c.channel_id, policy.c.system_prompt, policy.c.default_model, policy.c.chats_off
        ).where(
            policy.c.workspace_id == bindparam("workspace_id"),
            policy.c.channel_id.in_([literal(""), bindparam("channel_id")]),
        ),
        # A turned-off person comes back as a row with a NULL channel.
        select(null(), null(), null(), literal(True)).where(
            access.c.workspace_id == bindparam("workspace_id"),
            access.c.user_id == bindparam("user_id"),
        ),
    )


async def chat_policy(
    session: AsyncSession, *, workspace_id: int, channel_id: str, user_id: str
) -> ChatPolicy:
    """Everything the admins decided that a chat here, by this person, meets: one query."""
    rows = await session.execute(
        chat_policy_stmt(),
        {"workspace_id": workspace_id, "channel_id": channel_id, "user_id": user_id},
    )
    return policy_from_rows(rows.all())


def policy_from_rows(rows: Iterable[Sequence[Any]]) -> ChatPolicy:
    """The policy that the rows of the chat-policy statement add up to."""
    found: dict[str, Any] = {}
    for channel, prompt, model, off in rows:
        if channel is None:
            found["user_off"] = True
        elif channel == "":
            found["workspace_prompt"] = prompt
        else:
            found.update(channel_prompt=prompt, channel_model=model, channel_off=bool(off))
    return ChatPolicy(**found)


async def get_policy(
    session: AsyncSession, *, workspace_id: int, channel_id: str
) -> ChannelPolicy | None:
    stmt = select(ChannelPolicy).where(
        col(ChannelPolicy.workspace_id) == workspace_id,
        col(ChannelPolicy.channel_id) == channel_id,
    )
    return (await session.scalars(stmt)).first()


async def set_policy(
    session: AsyncSession, *, workspace_id: int, channel_id: str, by: str, **values: Any
) -> None:
    """Set some of a channel's (``""``: the workspace's) policy fields, leaving the others."""
    unknown = set(values) - POLICY_FIELDS
    if unknown:
        raise ValueError(f"not policy fields: {sorted(unknown)}")
    now = utcnow()
    stmt = upsert_insert(session, ChannelPolicy).values(
        workspace_id=workspace_id,
        channel_id=channel_id,
        chats_off=values.get("chats_off", False),
        system_prompt=values.get("system_prompt"),
        default_model=values.get("default_model"),
        updated_by=by,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "channel_id"],
        set_={**values, "updated_by": by, "updated_at": now},
    )
    await session.execute(stmt)


async def clear_channel_models(session: AsyncSession, *, workspace_id: int, model_id: str) -> int:
    """Channels whose default was ``model_id`` follow the workspace's again (the model left
    the allowlist); returns how many."""
    result = await session.execute(
        update(ChannelPolicy)
        .where(
            col(ChannelPolicy.workspace_id) == workspace_id,
            col(ChannelPolicy.default_model) == model_id,
        )
        .values(default_model=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def set_user_off(
    session: AsyncSession, *, workspace_id: int, user_id: str, off: bool, by: str
) -> bool:
    """Turn one person's chats off (or back on); True when that changed anything."""
    if off:
        stmt = (
            upsert_insert(session, UserAccess)
            .values(workspace_id=workspace_id, user_id=user_id, set_by=by, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["workspace_id", "user_id"])
            .returning(col(UserAccess.id))
        )
        return (await session.execute(stmt)).scalar_one_or_none() is not None
    result = await session.execute(
        delete(UserAccess).where(
            col(UserAccess.workspace_id) == workspace_id, col(UserAccess.user_id) == user_id
        )
    )
    return int(getattr(result, "rowcount", 0) or 0) > 0


async def users_off(session: AsyncSession, *, workspace_id: int) -> list[str]:
    stmt = (
        select(col(UserAccess.user_id))
        .where(col(UserAccess.workspace_id) == workspace_id)
        .order_by(col(UserAccess.user_id))
    )
    return [str(u) for u in (await session.scalars(stmt)).all()]
