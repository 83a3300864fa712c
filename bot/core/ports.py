"""What the core needs from storage: Protocols over plain frozen records.

The core reaches the database only through a :class:`Store`: ``async with store.transaction()
as tx`` opens one unit of work whose repositories (``tx.workspaces``, ``tx.usage`` …) read and
write plain records (``storage.records``), never ORM rows, all in that one transaction.
``storage.sql_store.SqlStore`` implements it over SQLAlchemy; ``tests/unit/memory_store.py``
implements it in memory, so the core can be tested without a database. Front-ends import
these names from here, never from ``storage``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta
from typing import Protocol

from pydantic import SecretStr

from storage.crypto import KeyDecryptError, mask_key
from storage.db import is_database_outage
from storage.records import (
    WORKSPACE_BUDGET,
    AllowedModelRow,
    AnswerRow,
    BudgetRow,
    ChannelSpend,
    ConversationRef,
    FlightEntry,
    FlightRow,
    LedgerRow,
    NewModel,
    SlackInstallationRecord,
    StoredKey,
    StoredMessage,
    UsageEntry,
    UsageSummary,
    UsageTokens,
    UsageTotals,
    WorkspaceRow,
)

__all__ = [
    "WORKSPACE_BUDGET",
    "AllowedModelRow",
    "AllowlistRepo",
    "AnswerRepo",
    "AnswerRow",
    "BudgetRepo",
    "BudgetRow",
    "ChannelSpend",
    "ConversationRef",
    "ConversationRepo",
    "EventRepo",
    "FlightEntry",
    "FlightRepo",
    "FlightRow",
    "InstallationRepo",
    "KeyDecryptError",
    "KeyRepo",
    "LedgerRow",
    "NewModel",
    "SlackInstallationRecord",
    "Store",
    "StoredKey",
    "StoredMessage",
    "UnitOfWork",
    "UsageEntry",
    "UsageRepo",
    "UsageSummary",
    "UsageTokens",
    "UsageTotals",
    "Vault",
    "WorkspaceRepo",
    "WorkspaceRow",
    "is_database_outage",
    "mask_key",
]


class WorkspaceRepo(Protocol):
    async def get_or_create(
        self, *, platform: str, external_id: str, name: str | None
    ) -> tuple[WorkspaceRow, bool]:
        """The workspace, and whether this call created it (only one caller ever does)."""
        ...

    async def get(self, workspace_id: int) -> WorkspaceRow | None: ...

    async def find(self, *, external_id: str, platform: str | None) -> list[WorkspaceRow]: ...

    async def set_default_model(self, workspace_id: int, model_id: str | None) -> None: ...


class AllowlistRepo(Protocol):
    async def list(self, workspace_id: int) -> list[AllowedModelRow]:
        """In the order the allowlist was built (seeded models first, in file order)."""
        ...

    async def get(self, workspace_id: int, model_id: str) -> AllowedModelRow | None: ...

    async def add(self, workspace_id: int, model: NewModel) -> None:
        """Add, or update the prices of, one model."""
        ...

    async def add_many(self, workspace_id: int, models: Sequence[NewModel]) -> None: ...

    async def remove(self, workspace_id: int, model_id: str) -> bool:
        """Remove it (clearing the default when it was the default); False when absent."""
        ...


class KeyRepo(Protocol):
    async def get(self, workspace_id: int, provider: str) -> StoredKey | None: ...

    async def list(self, workspace_id: int) -> list[StoredKey]: ...

    async def set(
        self, workspace_id: int, *, provider: str, ciphertext: bytes, masked: str, set_by: str
    ) -> None: ...

    async def delete(self, workspace_id: int, provider: str) -> bool: ...


class ConversationRepo(Protocol):
    async def by_anchor(self, workspace_id: int, anchor: str) -> ConversationRef | None: ...

    async def get(self, workspace_id: int, conversation_id: int) -> ConversationRef | None: ...

    async def history(
        self, workspace_id: int, conversation_id: int, *, limit: int
    ) -> list[StoredMessage]:
        """The last ``limit`` messages, oldest first."""
        ...

    async def start(
        self,
        workspace_id: int,
        *,
        channel_id: str,
        user_id: str,
        provider: str,
        model: str,
        messages: Sequence[tuple[str, str]],
        anchors: Sequence[str],
    ) -> int:
        """A new conversation with its first messages and anchors; returns its id."""
        ...

    async def append(
        self,
        workspace_id: int,
        conversation_id: int,
        *,
        messages: Sequence[tuple[str, str]],
        anchors: Sequence[str],
    ) -> None: ...

    async def add_anchor(self, workspace_id: int, anchor: str, conversation_id: int) -> None: ...


class UsageRepo(Protocol):
    async def record(self, entry: UsageEntry) -> int:
        """Write one ledger row and its daily rollups; returns the row's id."""
        ...

    async def conversation_of_generation(
        self, workspace_id: int, generation_id: str
    ) -> tuple[bool, int | None]:
        """Whether this generation is on record, and the conversation it was recorded with."""
        ...

    async def summarize(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> UsageSummary: ...

    def stream(
        self, workspace_id: int, *, since: datetime | None, with_generation_id: bool = False
    ) -> AsyncIterator[LedgerRow]: ...

    async def correct_cost(
        self,
        workspace_id: int,
        usage_id: int,
        *,
        cost_nano: int | None,
        cost_source: str,
        tokens: UsageTokens | None = None,
    ) -> bool:
        """Correct one row's cost (and, with ``tokens``, its counts and served model), its
        rollups with it; False when there is no such row."""
        ...


class BudgetRepo(Protocol):
    async def lock(self, workspace_id: int) -> None:
        """Serialise budget checks of one workspace until this transaction ends (the
        transaction's first call)."""
        ...

    async def has_any(self, workspace_id: int) -> bool: ...

    async def applying(self, workspace_id: int, channel_id: str) -> list[BudgetRow]:
        """The limits a chat in ``channel_id`` meets: the workspace's first, then its own."""
        ...

    async def all(self, workspace_id: int) -> list[BudgetRow]: ...

    async def set(
        self, workspace_id: int, channel_id: str, *, limit_nano: int, set_by: str
    ) -> None: ...

    async def clear(self, workspace_id: int, channel_id: str) -> bool: ...

    async def claim_notice(self, budget_id: int, month: str) -> bool: ...

    async def hold(
        self,
        workspace_id: int,
        channel_id: str,
        *,
        amount_nano: int,
        now: datetime,
        ttl: timedelta,
        owner: str | None = None,
    ) -> int:
        """Hold until ``now + ttl``: with an ``owner``, a lease that process renews."""
        ...

    async def renew_holds(self, owner: str, ids: Sequence[int], until: datetime) -> None:
        """Extend these holds of ``owner`` to ``until``."""
        ...

    async def prune_lapsed(self, now: datetime) -> int:
        """Delete every workspace's holds that lapsed by ``now`` (they no longer count)."""
        ...

    async def release(self, workspace_id: int, hold_id: int) -> None: ...

    async def prune_holds(self, workspace_id: int, now: datetime) -> None: ...

    async def held(self, workspace_id: int, channel_id: str | None, now: datetime) -> int: ...

    async def spent_since(self, workspace_id: int, channel_id: str | None, first_day: date) -> int:
        """Known spend since ``first_day``, of the workspace or one channel."""
        ...

    async def by_channel(
        self, workspace_id: int, first_day: date, now: datetime
    ) -> ChannelSpend: ...


class EventRepo(Protocol):
    async def claim(self, platform: str, event_key: str) -> bool:
        """True for the first claim of a delivery, on any process; False for every later one."""
        ...

    async def prune(self, older_than: datetime) -> int: ...


class AnswerRepo(Protocol):
    """The journal of answers in flight (see ``bot.core.inflight``)."""

    async def record(
        self, *, platform: str, owner: str, targets: Sequence[str], now: datetime
    ) -> list[int]: ...

    async def delete(self, ids: Sequence[int]) -> None: ...

    async def heartbeat(self, owner: str, now: datetime) -> None: ...

    async def claim_orphans(
        self, *, platform: str, owner: str, stale_before: datetime, now: datetime
    ) -> list[AnswerRow]: ...


class FlightRepo(Protocol):
    """Chats the provider accepted that are not settled on the ledger yet (see
    ``bot.core.chat.flights``). Owners renew their leases; a lapsed lease is claimed by
    exactly one process."""

    async def add(self, entries: Sequence[FlightEntry]) -> list[int]:
        """Insert the rows; their ids, in order."""
        ...

    async def release(self, flight_id: int, owner: str) -> bool:
        """Delete the row if ``owner`` still holds it; False when another process took it."""
        ...

    async def renew(self, owner: str, until: datetime, streamed: Sequence[tuple[int, int]]) -> None:
        """Extend these rows of ``owner`` to ``until``, with their streamed characters
        (``(id, chars)`` pairs)."""
        ...

    async def claim(
        self, owner: str, *, now: datetime, until: datetime, limit: int
    ) -> list[FlightRow]:
        """Take over up to ``limit`` rows whose lease lapsed before ``now``, leased to
        ``owner`` until ``until``; each row goes to exactly one caller."""
        ...

    async def postpone(self, flight_id: int, owner: str, until: datetime) -> None:
        """Leave a claimed row for a later attempt, after ``until``."""
        ...


class InstallationRepo(Protocol):
    async def save(self, record: SlackInstallationRecord) -> None: ...

    async def find(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> SlackInstallationRecord | None: ...

    async def delete(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> None: ...

    async def issue_state(self, state: str, expire_at: datetime) -> None: ...

    async def consume_state(self, state: str) -> bool: ...


class UnitOfWork(Protocol):
    """One transaction: committed when its block ends, rolled back when it raises."""

    @property
    def workspaces(self) -> WorkspaceRepo: ...
    @property
    def allowlist(self) -> AllowlistRepo: ...
    @property
    def keys(self) -> KeyRepo: ...
    @property
    def conversations(self) -> ConversationRepo: ...
    @property
    def usage(self) -> UsageRepo: ...
    @property
    def budgets(self) -> BudgetRepo: ...
    @property
    def events(self) -> EventRepo: ...
    @property
    def answers(self) -> AnswerRepo: ...
    @property
    def flights(self) -> FlightRepo: ...
    @property
    def installations(self) -> InstallationRepo: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]: ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached (health checks)."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a failed transaction may succeed if simply tried again."""
        ...

    def is_outage(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the database is unreachable or locked for now."""
        ...

    async def close(self) -> None: ...


class Vault(Protocol):
    """Encrypts secrets at rest (provider keys, Slack tokens, Discord interaction tokens)."""

    def encrypt(self, secret: SecretStr) -> bytes: ...

    def decrypt(self, ciphertext: bytes) -> SecretStr:
        """Raises :class:`KeyDecryptError` when no configured key opens it."""
        ...
