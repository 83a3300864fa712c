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

from bot.core.governance_ports import AuditRepo, PolicyRepo
from storage.crypto import KeyDecryptError, mask_key
from storage.db import is_database_outage
from storage.records import (
    EACH_USER,
    WORKSPACE_BUDGET,
    AllowedModelRow,
    AnswerRow,
    AuditRecord,
    AuditRow,
    BudgetRow,
    ChannelSpend,
    ChatPolicy,
    ConversationRef,
    LedgerRow,
    NewModel,
    SlackInstallationRecord,
    Standing,
    StoredKey,
    StoredMessage,
    UsageEntry,
    UsageSummary,
    UsageTotals,
    UserSpend,
    WorkspaceRow,
)

__all__ = [
    "EACH_USER",
    "WORKSPACE_BUDGET",
    "AllowedModelRow",
    "AllowlistRepo",
    "AnswerRepo",
    "AnswerRow",
    "AuditRecord",
    "AuditRepo",
    "AuditRow",
    "BudgetRepo",
    "BudgetRow",
    "ChannelSpend",
    "ChatPolicy",
    "ConversationRef",
    "ConversationRepo",
    "EventRepo",
    "InstallationRepo",
    "KeyDecryptError",
    "KeyRepo",
    "LedgerRow",
    "NewModel",
    "PolicyRepo",
    "SlackInstallationRecord",
    "Standing",
    "Store",
    "StoredKey",
    "StoredMessage",
    "UnitOfWork",
    "UsageEntry",
    "UsageRepo",
    "UsageSummary",
    "UsageTotals",
    "UserSpend",
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
    async def all(self, workspace_id: int) -> list[AllowedModelRow]:
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

    async def of_provider(
        self, provider: str, workspace_id: int | None
    ) -> list[tuple[int, AllowedModelRow]]:
        """``(workspace id, model)`` of one provider's allowlisted models, in one workspace or
        (an operator's catalogue sync) in all of them."""
        ...

    async def set_pricing(
        self,
        workspace_id: int,
        model_id: str,
        *,
        input_nano_per_1m: int | None,
        output_nano_per_1m: int | None,
        cached_input_nano_per_1m: int | None,
    ) -> None: ...

    async def mark_unavailable(
        self, workspace_id: int, model_id: str, *, reason: str, now: datetime
    ) -> bool:
        """The provider no longer serves it; False when it was already marked."""
        ...

    async def mark_available(self, workspace_id: int, model_id: str, *, now: datetime) -> None:
        """The provider confirmed it serves the model: clear any mark, note when."""
        ...


class KeyRepo(Protocol):
    async def get(self, workspace_id: int, provider: str) -> StoredKey | None: ...

    async def all(self, workspace_id: int) -> list[StoredKey]: ...

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
    async def record(self, entry: UsageEntry) -> None:
        """Write one ledger row and its daily rollups."""
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

    async def daily_spend(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        first_day: date | None,
        end_day: date | None,
        user_id: str | None = None,
    ) -> list[tuple[date, int]]:
        """Known spend per UTC day over ``[first_day, end_day)``, days with rows only: of a
        channel, of one person (``user_id``, everywhere in the workspace), or of the whole
        workspace."""
        ...

    async def summarize_user(
        self, workspace_id: int, user_id: str, *, since: datetime | None, until: datetime | None
    ) -> UsageSummary:
        """One person's spend (``by_model``, ``by_channel``; ``by_user`` holds only them)."""
        ...

    def stream(
        self, workspace_id: int, *, since: datetime | None, with_generation_id: bool = False
    ) -> AsyncIterator[LedgerRow]: ...

    async def correct_cost(
        self, workspace_id: int, usage_id: int, *, cost_nano: int | None, cost_source: str
    ) -> bool: ...


class BudgetRepo(Protocol):
    """Limits are scoped ``(channel_id, user_id)``: see :class:`BudgetRow`."""

    async def lock(self, workspace_id: int) -> None:
        """Serialise budget checks of one workspace until this transaction ends (the
        transaction's first call)."""
        ...

    async def has_any(self, workspace_id: int) -> bool: ...

    async def applying(
        self, workspace_id: int, channel_id: str, user_id: str = ""
    ) -> list[BudgetRow]:
        """The limits a chat in ``channel_id`` by ``user_id`` meets: the workspace's, the
        channel's, then the person's own and the each-user limit (both, if both exist)."""
        ...

    async def all(self, workspace_id: int) -> list[BudgetRow]: ...

    async def get(
        self, workspace_id: int, channel_id: str, user_id: str = ""
    ) -> BudgetRow | None: ...

    async def set(
        self, workspace_id: int, channel_id: str, *, limit_nano: int, set_by: str, user_id: str = ""
    ) -> None:
        """Create or replace a limit; its notices may be given again this month."""
        ...

    async def clear(self, workspace_id: int, channel_id: str, user_id: str = "") -> bool: ...

    async def claim_notice(
        self, budget_id: int, month: str, *, level: int = 80, subject: str = ""
    ) -> bool:
        """True for the one caller that gives this notice (``level`` %, ``month``, for
        ``subject`` with an each-user limit); False for every later one."""
        ...

    async def hold(
        self,
        workspace_id: int,
        channel_id: str,
        *,
        amount_nano: int,
        now: datetime,
        ttl: timedelta,
        user_id: str = "",
    ) -> int: ...

    async def release(self, workspace_id: int, hold_id: int) -> None: ...

    async def prune_holds(self, workspace_id: int, now: datetime) -> None: ...

    async def held(self, workspace_id: int, channel_id: str | None, now: datetime) -> int: ...

    async def spent_since(self, workspace_id: int, channel_id: str | None, first_day: date) -> int:
        """Known spend since ``first_day``, of the workspace or one channel."""
        ...

    async def standing(
        self, workspace_id: int, channel_id: str, user_id: str, first_day: date, now: datetime
    ) -> Standing:
        """Spend since ``first_day`` and live holds of the workspace, a channel, a person."""
        ...

    async def by_channel(
        self, workspace_id: int, first_day: date, now: datetime
    ) -> ChannelSpend: ...

    async def by_user(self, workspace_id: int, first_day: date, now: datetime) -> UserSpend: ...


class EventRepo(Protocol):
    async def claim(self, platform: str, event_key: str) -> bool:
        """True for the first claim of a delivery, on any process; False for every later one."""
        ...

    async def prune(self, older_than: datetime) -> int: ...

    async def raise_signal(self, platform: str, key: str) -> None:
        """Leave a signal under ``key`` for other processes (Slack's Stop for an answer another
        process streams); raising it again moves its time to now."""
        ...

    async def raised_since(self, platform: str, key: str, since: datetime) -> bool:
        """Whether the signal ``key`` was raised at or after ``since``."""
        ...


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
    def policies(self) -> PolicyRepo: ...
    @property
    def audit(self) -> AuditRepo: ...
    @property
    def events(self) -> EventRepo: ...
    @property
    def answers(self) -> AnswerRepo: ...
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
