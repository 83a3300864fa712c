"""Money: the usage ledger and its daily rollup, the monthly budgets with their notices and
holds, and the chats in flight that are not on the ledger yet."""

from __future__ import annotations

from datetime import date

from pydantic import NaiveDatetime
from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.clock import utcnow


class UsageRecord(SQLModel, table=True):
    """The ledger: one row per chat, whatever its outcome."""

    __tablename__ = "usage_record"
    __table_args__ = (
        Index("ix_usage_ws_channel_time", "workspace_id", "channel_id", "created_at"),
        Index("ix_usage_ws_time", "workspace_id", "created_at"),
        # One person's spend in a period (``/costs me``) without scanning the workspace's.
        Index("ix_usage_ws_user_time", "workspace_id", "user_id", "created_at"),
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
    #: Web searches run for the chat (``usage.server_tool_use_details.web_search_requests``).
    # No client-side default: inserts written against older revisions (the migration tests)
    # must not name a column those revisions lack.
    web_search_requests: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    #: nano-USD of ``cost_nano`` that paid for the searches, where the price per search is known.
    web_search_cost_nano: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
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


class Budget(SQLModel, table=True):
    """A monthly spend limit (calendar month, UTC): the workspace's, a channel's or a person's.

    The scope is ``(channel_id, user_id)``: ``("", "")`` the workspace, ``(C, "")`` channel
    ``C``, ``("", U)`` user ``U`` everywhere in the workspace, ``("", "*")`` everyone without a
    limit of their own (each-user). ``""`` rather than NULL, so the unique constraint holds
    (NULLs never collide). ``notified_month`` is no longer written (notices are claimed in
    ``budget_notice``); it stays for workers of the previous release during a rolling deploy.
    """

    __tablename__ = "budget"
    __table_args__ = (
        UniqueConstraint("workspace_id", "channel_id", "user_id", name="uq_budget_scope"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel_id: str = Field(default="", max_length=64)
    user_id: str = Field(default="", max_length=64)
    limit_nano: int = Field(sa_column=Column(BigInteger, nullable=False))
    notified_month: str | None = Field(default=None, max_length=7)
    set_by: str | None = Field(default=None, max_length=64)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)


class BudgetNotice(SQLModel, table=True):
    """A notice that went out: limit ``budget_id`` reached ``level`` % in ``month``
    (``YYYY-MM``) for ``subject`` (the person, for an each-user limit; else ``""``).

    Claimed with an insert that the unique constraint lets only one worker win, so each
    notice is given once a month however many workers settle chats at once.
    """

    __tablename__ = "budget_notice"
    __table_args__ = (
        UniqueConstraint("budget_id", "subject", "month", "level", name="uq_budget_notice"),
    )

    id: int | None = Field(default=None, primary_key=True)
    budget_id: int = Field(foreign_key="budget.id")
    subject: str = Field(default="", max_length=64)
    month: str = Field(max_length=7)
    level: int


class BudgetReservation(SQLModel, table=True):
    """An estimate held against the budgets while a chat is in flight.

    Deleted when the chat settles. ``expires_at`` is a lease: ``owner`` (the process running
    the chat) renews it while the chat runs, so the holds of a process that died stop counting
    within one lease. ``user_id`` is who chatted, so that person's limit counts what they hold.
    """

    __tablename__ = "budget_reservation"
    __table_args__ = (Index("ix_budget_reservation_ws_expires", "workspace_id", "expires_at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel_id: str = Field(max_length=64)
    user_id: str = Field(default="", max_length=64)
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
