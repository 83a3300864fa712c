"""What the core needs from storage: Protocols over plain frozen records.

The core reaches the database only through a :class:`Store`: ``async with store.transaction()
as tx`` opens one unit of work whose repositories (``tx.workspaces``, ``tx.usage`` …) read and
write plain records (``storage.records``), never ORM rows, all in that one transaction.
``storage.sql_store.SqlStore`` implements it over SQLAlchemy; ``tests/unit/memory_store.py``
implements it in memory, so the core can be tested without a database. Front-ends import
these names from here, never from ``storage``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from pydantic import SecretStr

from bot.core.ports.governance import AuditRepo, PolicyRepo
from bot.core.ports.process import AnswerRepo, EventRepo, FlightRepo, InstallationRepo
from bot.core.ports.spend import BudgetRepo, UsageRepo
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
    ChatRead,
    ConversationRef,
    FlightEntry,
    FlightRow,
    LedgerRow,
    NewModel,
    SlackInstallationRecord,
    Standing,
    StoredKey,
    StoredMessage,
    TurnWrite,
    TurnWritten,
    UsageEntry,
    UsageSummary,
    UsageTokens,
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
    "ChatRead",
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
    "PolicyRepo",
    "SlackInstallationRecord",
    "Standing",
    "Store",
    "StoredKey",
    "StoredMessage",
    "TurnWrite",
    "TurnWritten",
    "UnitOfWork",
    "UsageEntry",
    "UsageRepo",
    "UsageSummary",
    "UsageTokens",
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

    async def add_anchor(self, workspace_id: int, anchor: str, conversation_id: int) -> None: ...


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
    def flights(self) -> FlightRepo: ...
    @property
    def installations(self) -> InstallationRepo: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]: ...

    async def read_chat(
        self,
        workspace_id: int,
        *,
        channel_id: str,
        user_id: str,
        model_id: str | None,
        conversation_id: int | None,
        history_limit: int,
        with_limits: bool,
    ) -> ChatRead:
        """Everything a chat reads before it starts, in one transaction: the policy for the
        channel and person, the model (``model_id``, else the channel's default, else the
        workspace's) with its allowlist row, the key of its provider, the conversation's last
        ``history_limit`` messages and (``with_limits``) whether any spend limit exists."""
        ...

    async def claim_event(self, platform: str, event_key: str) -> bool:
        """True for the first claim of ``event_key`` on ``platform``, on any process (one
        transaction of its own)."""
        ...

    async def put_in_flight(
        self, entries: Sequence[FlightEntry], *, release: Sequence[int], owner: str
    ) -> list[int]:
        """Release ``owner``'s rows ``release`` and add ``entries`` (one transaction); the new
        rows' ids, in order."""
        ...

    async def write_turn(self, turn: TurnWrite) -> TurnWritten:
        """A finished chat in one transaction (see :class:`TurnWrite`): raises
        ``ConversationNotFoundError`` for a conversation of another workspace."""
        ...

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
