"""Workspaces and what each one keeps: its allowlist, its provider keys, its conversations,
its channel policies, who may not chat, and its audit log."""

from __future__ import annotations

from pydantic import NaiveDatetime
from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.clock import utcnow


class Workspace(SQLModel, table=True):
    """One tenant: a Slack team, a Discord guild or a console workspace."""

    __tablename__ = "workspace"
    __table_args__ = (
        UniqueConstraint("platform", "external_id", name="uq_workspace_platform_ext"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=200)
    default_model: str | None = Field(default=None, max_length=200)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class AllowedModel(SQLModel, table=True):
    """A model id a workspace may use, with its pricing (kept current by the catalogue sync)
    and whether the provider still serves it."""

    __tablename__ = "allowed_model"
    __table_args__ = (UniqueConstraint("workspace_id", "model_id", name="uq_allowed_model"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    provider: str = Field(max_length=32)
    model_id: str = Field(max_length=200)
    input_nano_per_1m: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    output_nano_per_1m: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    cached_input_nano_per_1m: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    added_by: str | None = Field(default=None, max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    #: Why the provider no longer serves it (``gone``, ``expired``, ``refused``), if it does not.
    unavailable_reason: str | None = Field(default=None, max_length=16)
    unavailable_since: NaiveDatetime | None = None
    #: When the provider last confirmed it serves the model (added, or seen by a sync).
    confirmed_at: NaiveDatetime | None = None


class ProviderKey(SQLModel, table=True):
    """A workspace's API key for one provider, Fernet-encrypted; only a mask is kept in clear."""

    __tablename__ = "provider_key"
    __table_args__ = (UniqueConstraint("workspace_id", "provider", name="uq_provider_key"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    provider: str = Field(max_length=32)
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: e.g. ``sk-or-v1-…9f3a``: enough to recognise a key, useless to use one.
    masked: str = Field(max_length=40)
    set_by: str | None = Field(default=None, max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    """A /chat and its follow-ups: the model stays the same for the whole conversation."""

    __tablename__ = "conversation"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    channel_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    model: str = Field(max_length=200)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class ConversationMessage(SQLModel, table=True):
    __tablename__ = "conversation_message"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    role: str = Field(max_length=16)
    content: str
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class ConversationAnchor(SQLModel, table=True):
    """A platform message that continues a conversation when replied to.

    Slack: the thread's root ``ts``; Discord: each message id of a bot answer.
    """

    __tablename__ = "conversation_anchor"
    __table_args__ = (UniqueConstraint("workspace_id", "anchor", name="uq_conversation_anchor"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    anchor: str = Field(max_length=128)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)


class ChannelPolicy(SQLModel, table=True):
    """What an admin decided for one channel (or, with ``channel_id == ""``, the workspace):
    its system prompt, its default model, whether chats are off there.

    The workspace's default model stays on ``workspace.default_model``; a channel's is here.
    """

    __tablename__ = "channel_policy"
    __table_args__ = (UniqueConstraint("workspace_id", "channel_id", name="uq_channel_policy"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel_id: str = Field(default="", max_length=64)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    default_model: str | None = Field(default=None, max_length=200)
    chats_off: bool = False
    updated_by: str | None = Field(default=None, max_length=64)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)


class UserAccess(SQLModel, table=True):
    """A person whose chats are turned off in a workspace (the row's existence says so)."""

    __tablename__ = "user_access"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id", name="uq_user_access"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    user_id: str = Field(max_length=64)
    set_by: str | None = Field(default=None, max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    """One admin change, written in the same transaction as the change itself.

    ``old_value`` and ``new_value`` are what an admin would recognise (a masked key, an
    amount, a prompt's text), never a secret.
    """

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_ws_time", "workspace_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=64)
    action: str = Field(max_length=32)
    target: str = Field(max_length=255)
    old_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    new_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
