"""SQLModel tables: one class per concept.

Conventions: money is an integer number of nano-USD (1e-9 USD), prices are nano-USD per 1M
tokens, times are naive UTC. Every tenant-owned row carries ``workspace_id``.

Timestamps are annotated ``NaiveDatetime``: SQLModel maps a plain ``datetime`` to its
``UTCDateTime`` type, which rejects naive values and makes PostgreSQL columns ``timestamptz``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import NaiveDatetime
from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Naive UTC now: what every timestamp column stores."""
    return datetime.now(UTC).replace(tzinfo=None)


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
    """A model id a workspace may use, with the pricing known when it was added."""

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


class UsageRecord(SQLModel, table=True):
    """The ledger: one row per chat, whatever its outcome."""

    __tablename__ = "usage_record"
    __table_args__ = (
        Index("ix_usage_ws_channel_time", "workspace_id", "channel_id", "created_at"),
        Index("ix_usage_ws_time", "workspace_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    model_requested: str = Field(max_length=200)
    model_served: str | None = Field(default=None, max_length=200)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    #: nano-USD; NULL when the cost is unknown.
    cost_nano: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    #: ``reported`` (provider's usage.cost), ``computed`` (pricing table), ``unknown``,
    #: ``none`` (failed before any token), ``reconciled`` (taken from GET /generation) or
    #: ``estimated`` (a chat cut short whose provider had no record: the prompt's estimate
    #: and the text streamed, at list prices).
    cost_source: str = Field(default="unknown", max_length=16)
    generation_id: str | None = Field(default=None, max_length=128, index=True)
    latency_ms: int = 0
    #: ``ok``, ``cut_off``, ``error``, ``cancelled`` (its consumer went away) or
    #: ``interrupted`` (its process died; settled by another).
    outcome: str = Field(max_length=16)
    error_kind: str | None = Field(default=None, max_length=32)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class ProcessedEvent(SQLModel, table=True):
    """A platform event already taken by some process: the cross-process de-duplication claim.

    ``event_key`` is whatever identifies one delivery on its platform (Slack: a message's
    team, channel and ts, or a slash command's trigger id). Old rows are pruned.
    """

    __tablename__ = "processed_event"
    __table_args__ = (
        UniqueConstraint("platform", "event_key", name="uq_processed_event"),
        Index("ix_processed_event_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_key: str = Field(max_length=255)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class AnswerInFlight(SQLModel, table=True):
    """An answer a process is still streaming into a chat, so that another process can finish
    its message if this one dies (SIGKILL, an out-of-memory kill, a lost machine).

    ``owner`` is the streaming process's random id; it renews ``heartbeat_at`` while it lives.
    ``target`` is JSON only its platform's front-end reads: where the message is (channel,
    message ids) and how to say the answer was cut short. It holds no plain secret: a
    credential it needs (a Discord interaction token) is encrypted with the key vault.
    """

    __tablename__ = "answer_in_flight"
    __table_args__ = (Index("ix_answer_in_flight_platform_heartbeat", "platform", "heartbeat_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    owner: str = Field(max_length=32, index=True)
    target: str = Field(sa_column=Column(Text, nullable=False))
    heartbeat_at: NaiveDatetime
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class SlackInstallation(SQLModel, table=True):
    """A Slack workspace (or org) that installed the app through OAuth; the latest wins.

    ``enterprise_id`` and ``team_id`` are ``""`` rather than NULL when absent, so the unique
    constraint holds (NULLs never collide). Tokens are Fernet-encrypted like provider keys.
    """

    __tablename__ = "slack_installation"
    __table_args__ = (
        UniqueConstraint("client_id", "enterprise_id", "team_id", name="uq_slack_installation"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64)
    app_id: str | None = Field(default=None, max_length=32)
    enterprise_id: str = Field(default="", max_length=32)
    enterprise_name: str | None = Field(default=None, max_length=200)
    team_id: str = Field(default="", max_length=32)
    team_name: str | None = Field(default=None, max_length=200)
    is_enterprise_install: bool = False
    bot_id: str | None = Field(default=None, max_length=32)
    bot_user_id: str | None = Field(default=None, max_length=32)
    bot_scopes: str = Field(default="", max_length=1000)
    bot_token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    bot_refresh_token: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    bot_token_expires_at: NaiveDatetime | None = None
    installer_user_id: str | None = Field(default=None, max_length=32)
    installed_at: NaiveDatetime = Field(default_factory=utcnow)


class SlackOAuthState(SQLModel, table=True):
    """A one-time OAuth ``state`` issued by ``/slack/install``; consumed by the redirect."""

    __tablename__ = "slack_oauth_state"
    __table_args__ = (UniqueConstraint("state", name="uq_slack_oauth_state"),)

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(max_length=64)
    expire_at: NaiveDatetime = Field(index=True)


class Budget(SQLModel, table=True):
    """A monthly spend limit (calendar month, UTC) for a workspace or one of its channels.

    ``channel_id`` is ``""`` for the workspace-wide limit rather than NULL, so the unique
    constraint holds (NULLs never collide). ``notified_month`` (``YYYY-MM``) records that the
    80 % notice went out for that month: claimed with a conditional UPDATE, so it is sent once
    even with several workers.
    """

    __tablename__ = "budget"
    __table_args__ = (UniqueConstraint("workspace_id", "channel_id", name="uq_budget"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel_id: str = Field(default="", max_length=64)
    limit_nano: int = Field(sa_column=Column(BigInteger, nullable=False))
    notified_month: str | None = Field(default=None, max_length=7)
    set_by: str | None = Field(default=None, max_length=64)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)


class BudgetReservation(SQLModel, table=True):
    """An estimate held against the budgets while a chat is in flight.

    Deleted when the chat settles. ``expires_at`` is a lease: ``owner`` (the process running
    the chat) renews it while the chat runs, so the holds of a process that died stop counting
    within one lease.
    """

    __tablename__ = "budget_reservation"
    __table_args__ = (Index("ix_budget_reservation_ws_expires", "workspace_id", "expires_at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel_id: str = Field(max_length=64)
    amount_nano: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    expires_at: NaiveDatetime
    owner: str | None = Field(default=None, max_length=32, index=True)


class ChatInFlight(SQLModel, table=True):
    """A chat the provider accepted whose cost is not settled on the ledger yet: what keeps a
    billed chat from being lost when its process dies.

    Written when the provider accepts the chat (its generation id known); deleted in the
    transaction that writes the chat's usage row. ``owner`` (the streaming process) renews
    ``lease_until`` and ``streamed_chars`` while it streams; a row whose lease lapsed belongs
    to a process that died and is settled by another (claimed with a conditional update, so
    exactly once). With ``usage_id`` the chat is on the ledger already, with a cost still
    unknown (cancelled, or no usage came), for settling to correct from GET /generation.
    """

    __tablename__ = "chat_in_flight"
    __table_args__ = (Index("ix_chat_in_flight_lease", "lease_until"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    model: str = Field(max_length=200)
    generation_id: str | None = Field(default=None, max_length=128)
    owner: str = Field(max_length=32)
    lease_until: NaiveDatetime
    started_at: NaiveDatetime
    #: The prompt's estimated tokens (about 4 characters a token): what an estimate starts from.
    prompt_tokens: int = 0
    streamed_chars: int = 0
    usage_id: int | None = Field(default=None, foreign_key="usage_record.id")


class UsageDaily(SQLModel, table=True):
    """Daily rollup of the ledger, kept exact in the same transaction as each usage row.

    One row per (workspace, scope, dimension, UTC day, key): ``scope`` is a channel id, or
    ``""`` for the whole workspace; ``dim`` is ``model`` (key: served, else requested model),
    ``user`` or, for the workspace scope only, ``channel``. Each usage row therefore adds to
    five rollup rows, and a summary reads at most days x keys rows instead of the ledger.
    The aggregates mean exactly what ``storage.stores.UsageTotals`` means.
    """

    __tablename__ = "usage_daily"
    # WITHOUT ROWID: SQLite clusters the rows on the primary key, so a period is one range scan.
    __table_args__ = ({"sqlite_with_rowid": False},)

    workspace_id: int = Field(foreign_key="workspace.id", primary_key=True)
    scope: str = Field(primary_key=True, max_length=64)
    dim: str = Field(primary_key=True, max_length=8)
    day: date = Field(primary_key=True)
    group_key: str = Field(primary_key=True, max_length=200)
    cost_nano: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    chats: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    failed: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    prompt_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    cached_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    completion_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    computed_cost_chats: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    unknown_cost_chats: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
