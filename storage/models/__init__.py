"""SQLModel tables: one class per concept.

Conventions: money is an integer number of nano-USD (1e-9 USD), prices are nano-USD per 1M
tokens, times are naive UTC. Every tenant-owned row carries ``workspace_id``.

Timestamps are annotated ``NaiveDatetime``: SQLModel maps a plain ``datetime`` to its
``UTCDateTime`` type, which rejects naive values and makes PostgreSQL columns ``timestamptz``.

The tables live in modules by concept; this package re-exports them all, and importing it
registers every table on ``SQLModel.metadata`` (the migrations rely on that).
"""

from storage.models.clock import utcnow
from storage.models.platform import (
    AnswerInFlight,
    ProcessedEvent,
    SlackInstallation,
    SlackOAuthState,
)
from storage.models.spend import (
    Budget,
    BudgetNotice,
    BudgetReservation,
    ChatInFlight,
    UsageDaily,
    UsageRecord,
)
from storage.models.tenants import (
    AllowedModel,
    AuditEntry,
    ChannelPolicy,
    Conversation,
    ConversationAnchor,
    ConversationMessage,
    ProviderKey,
    UserAccess,
    Workspace,
)

__all__ = [
    "AllowedModel",
    "AnswerInFlight",
    "AuditEntry",
    "Budget",
    "BudgetNotice",
    "BudgetReservation",
    "ChannelPolicy",
    "ChatInFlight",
    "Conversation",
    "ConversationAnchor",
    "ConversationMessage",
    "ProcessedEvent",
    "ProviderKey",
    "SlackInstallation",
    "SlackOAuthState",
    "UsageDaily",
    "UsageRecord",
    "UserAccess",
    "Workspace",
    "utcnow",
]
