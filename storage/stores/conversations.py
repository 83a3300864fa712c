"""Conversations, their messages, and the platform messages (anchors) that continue them."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Conversation, ConversationAnchor, ConversationMessage, utcnow


class ConversationNotFoundError(LookupError):
    """The conversation does not exist in this workspace."""

    def __init__(self, workspace_id: int, conversation_id: int) -> None:
        super().__init__(f"conversation {conversation_id} not found in workspace {workspace_id}")
        self.workspace_id = workspace_id
        self.conversation_id = conversation_id


async def create_conversation(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str,
    user_id: str,
    provider: str,
    model: str,
) -> Conversation:
    conversation = Conversation(
        workspace_id=workspace_id,
        channel_id=channel_id,
        user_id=user_id,
        provider=provider,
        model=model,
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def get_conversation(
    session: AsyncSession, *, workspace_id: int, conversation_id: int
) -> Conversation | None:
    result = await session.scalars(
        select(Conversation).where(
            col(Conversation.id) == conversation_id,
            col(Conversation.workspace_id) == workspace_id,
        )
    )
    return result.first()


async def _require_conversation(
    session: AsyncSession, *, workspace_id: int, conversation_id: int
) -> None:
    found = await session.scalar(
        select(col(Conversation.id)).where(
            col(Conversation.id) == conversation_id,
            col(Conversation.workspace_id) == workspace_id,
        )
    )
    if found is None:
        raise ConversationNotFoundError(workspace_id, conversation_id)


async def add_message(
    session: AsyncSession, *, workspace_id: int, conversation_id: int, role: str, content: str
) -> None:
    """Append a message; raises ConversationNotFoundError for another workspace's conversation."""
    await _require_conversation(session, workspace_id=workspace_id, conversation_id=conversation_id)
    session.add(
        ConversationMessage(
            conversation_id=conversation_id, role=role, content=content, created_at=utcnow()
        )
    )
    await session.flush()


async def get_messages(
    session: AsyncSession, *, workspace_id: int, conversation_id: int, limit: int = 50
) -> list[ConversationMessage]:
    """The last ``limit`` messages, oldest first; empty for another workspace's conversation."""
    if limit <= 0:
        return []
    result = await session.scalars(
        select(ConversationMessage)
        .join(Conversation, col(Conversation.id) == col(ConversationMessage.conversation_id))
        .where(
            col(ConversationMessage.conversation_id) == conversation_id,
            col(Conversation.workspace_id) == workspace_id,
        )
        # Newest first to apply the limit, then reversed: ids follow insertion order.
        .order_by(col(ConversationMessage.id).desc())
        .limit(limit)
    )
    messages = list(result.all())
    messages.reverse()
    return messages


async def add_anchor(
    session: AsyncSession, *, workspace_id: int, anchor: str, conversation_id: int
) -> None:
    """Link a platform message to a conversation; re-adding the same anchor is a no-op.

    The conversation must belong to the workspace, so an anchor can never lead into another
    tenant's history.
    """
    await _require_conversation(session, workspace_id=workspace_id, conversation_id=conversation_id)
    await _insert_anchor(session, workspace_id, anchor, conversation_id)


@cache
def anchor_upsert(dialect: str) -> Any:
    """Link an anchor to a conversation; re-adding the same anchor is a no-op. Built once per
    backend, run with ``workspace_id``, ``anchor`` and ``conversation_id``."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(ConversationAnchor)
        .values(
            workspace_id=bindparam("workspace_id"),
            anchor=bindparam("anchor"),
            conversation_id=bindparam("conversation_id"),
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "anchor"])
    )


async def _insert_anchor(
    session: AsyncSession, workspace_id: int, anchor: str, conversation_id: int
) -> None:
    await session.execute(
        anchor_upsert(session.get_bind().dialect.name),
        {"workspace_id": workspace_id, "anchor": anchor, "conversation_id": conversation_id},
    )


async def find_conversation_by_anchor(
    session: AsyncSession, *, workspace_id: int, anchor: str
) -> Conversation | None:
    result = await session.scalars(
        select(Conversation)
        .join(ConversationAnchor, col(ConversationAnchor.conversation_id) == col(Conversation.id))
        .where(
            col(ConversationAnchor.workspace_id) == workspace_id,
            col(ConversationAnchor.anchor) == anchor,
            col(Conversation.workspace_id) == workspace_id,
        )
    )
    return result.first()
