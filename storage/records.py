"""Plain frozen records that storage hands out and takes in: never ORM rows.

These are the vocabulary of the core's storage ports (``bot.core.ports``). They live here, not
in the core, because storage must not import ``bot``; the core re-exports them with its ports.
Money is integer nano-USD, prices nano-USD per 1M tokens, times naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: The ``channel_id`` of a workspace-wide budget (and the ``user_id`` of one that is not a
#: person's).
WORKSPACE_BUDGET = ""
#: The ``user_id`` of the each-user budget: everyone without a limit of their own.
EACH_USER = "*"


@dataclass(frozen=True, slots=True)
class WorkspaceRow:
    id: int
    platform: str
    external_id: str
    name: str | None
    default_model: str | None


@dataclass(frozen=True, slots=True)
class NewModel:
    """One model to put on an allowlist (prices in nano-USD per 1M tokens)."""

    provider: str
    model_id: str
    input_nano_per_1m: int | None
    output_nano_per_1m: int | None
    cached_input_nano_per_1m: int | None
    added_by: str | None = None


@dataclass(frozen=True, slots=True)
class AllowedModelRow:
    """A model on a workspace's allowlist, with the prices stored for it (kept current by the
    catalogue sync) and whether the provider still serves it."""

    provider: str
    model_id: str
    input_nano_per_1m: int | None
    output_nano_per_1m: int | None
    cached_input_nano_per_1m: int | None
    #: Why the provider no longer serves it (``gone``, ``expired``, ``refused``), if so.
    unavailable_reason: str | None = None
    unavailable_since: datetime | None = None
    #: When the provider last confirmed it serves the model.
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A workspace's provider key: Fernet ciphertext and a mask, never the key itself."""

    provider: str
    ciphertext: bytes
    masked: str


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """A conversation: a /chat and its follow-ups, which keep its model."""

    id: int
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One ledger row to write: a chat, whatever its outcome."""

    workspace_id: int
    channel_id: str
    user_id: str
    provider: str
    model_requested: str
    model_served: str | None
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost_nano: int | None
    cost_source: str
    generation_id: str | None
    latency_ms: int
    outcome: str
    error_kind: str | None
    conversation_id: int | None
    created_at: datetime
    #: Web searches the provider ran for the chat, and (where known) what they cost; the
    #: cost is part of ``cost_nano``.
    web_search_requests: int = 0
    web_search_cost_nano: int | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Aggregates over some usage rows. Money in nano-USD.

    ``chats`` counts rows whose outcome is not ``error``; ``failed`` counts ``error`` rows.
    ``cost_nano`` is the exact sum of the known costs; ``computed_cost_chats`` of those were
    priced from the pricing table or estimated (shown as ≈), ``unknown_cost_chats`` non-failed
    chats have no cost at all (a failed chat costs nothing, so it is never "unknown").
    """

    cost_nano: int
    chats: int
    failed: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    computed_cost_chats: int
    unknown_cost_chats: int


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Totals, then breakdowns sorted by cost (highest first), then key."""

    totals: UsageTotals
    by_model: list[tuple[str, UsageTotals]]
    by_user: list[tuple[str, UsageTotals]]
    by_channel: list[tuple[str, UsageTotals]]


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """A monthly limit. Scope ``(channel_id, user_id)``: ``("", "")`` the workspace's,
    ``(C, "")`` a channel's, ``("", U)`` one person's, ``("", EACH_USER)`` everyone's own."""

    id: int
    channel_id: str
    limit_nano: int
    user_id: str = ""
    #: Who set it (they hear privately when it reaches 80 % and 100 %).
    set_by: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelSpend:
    """This month's known spend and live holds, per channel (one read for every limit)."""

    spent: dict[str, int]
    held: dict[str, int]


@dataclass(frozen=True, slots=True)
class UserSpend:
    """This month's known spend and live holds, per person (for the limits on people)."""

    spent: dict[str, int]
    held: dict[str, int]


@dataclass(frozen=True, slots=True)
class Standing:
    """This month's known spend and live holds of the three scopes one chat meets: the
    workspace, its channel, the person asking (one read, under the budget lock)."""

    workspace_spent: int
    channel_spent: int
    user_spent: int
    workspace_held: int
    channel_held: int
    user_held: int


@dataclass(frozen=True, slots=True)
class ChatPolicy:
    """What the admins decided that a chat in one channel, by one person, meets."""

    workspace_prompt: str | None = None
    channel_prompt: str | None = None
    #: This channel's default model (overrides the workspace's).
    channel_model: str | None = None
    channel_off: bool = False
    user_off: bool = False


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One admin change to write: who, what, on what, from what to what (never a secret)."""

    workspace_id: int
    created_at: datetime
    platform: str
    user_id: str
    action: str
    target: str
    old_value: str | None
    new_value: str | None


@dataclass(frozen=True, slots=True)
class AuditRow(AuditRecord):
    """An admin change as stored, with its id."""

    id: int


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """An answer another process was streaming, claimed to be finished by this one."""

    id: int
    target: str


@dataclass(frozen=True, slots=True)
class FlightEntry:
    """A chat the provider accepted, not yet settled on the ledger (see ``ChatInFlight``).

    ``prompt_tokens`` is an estimate; ``usage_id`` is set once the chat is on the ledger with a
    cost still to be settled.
    """

    workspace_id: int
    channel_id: str
    user_id: str
    provider: str
    model: str
    generation_id: str | None
    owner: str
    lease_until: datetime
    started_at: datetime
    prompt_tokens: int
    streamed_chars: int
    usage_id: int | None


@dataclass(frozen=True, slots=True)
class FlightRow(FlightEntry):
    """A chat in flight as stored, with its id: claimed to be settled by this process."""

    id: int


@dataclass(frozen=True, slots=True)
class UsageTokens:
    """Token counts and the model that served, as the provider's record gives them."""

    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    model_served: str | None


@dataclass(frozen=True, slots=True)
class SlackInstallationRecord:
    """A Slack workspace that installed the app; tokens are Fernet ciphertext."""

    client_id: str
    app_id: str | None
    enterprise_id: str
    enterprise_name: str | None
    team_id: str
    team_name: str | None
    is_enterprise_install: bool
    bot_id: str | None
    bot_user_id: str | None
    bot_scopes: str
    bot_token: bytes
    bot_refresh_token: bytes | None
    bot_token_expires_at: datetime | None
    installer_user_id: str | None
    installed_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerRow(UsageEntry):
    """A ledger row as stored, with its id (exports, reconciliation)."""

    # Keyword-only: it follows the entry's fields that have defaults.
    id: int = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class ChatRead:
    """What a chat reads before it starts, in one transaction."""

    policy: ChatPolicy
    #: The model the chat runs on: the one asked for (or the conversation's), else the
    #: channel's default, else the workspace's; ``None`` when there is none at all.
    model_id: str | None
    #: That model's allowlist row; ``None`` when the workspace does not allow it.
    model: AllowedModelRow | None
    #: The workspace's key for the model's provider.
    key: StoredKey | None
    #: The conversation's last messages, oldest first (empty for a new one).
    history: tuple[StoredMessage, ...]
    #: Whether the workspace has any spend limit (``None``: not asked).
    has_limits: bool | None


@dataclass(frozen=True, slots=True)
class TurnWrite:
    """A finished chat as one write: its turn in the conversation and its ledger row.

    ``messages`` is empty for a chat that failed (nothing joins the conversation); a
    conversation is started when ``conversation_id`` is ``None``. ``flight_row`` is the
    chat's row in flight (released here; the usage row is written only if this process
    still held it). With ``check_generation`` (a retry) a usage row already written for the
    generation means the chat is on the ledger: nothing more is written. ``settle`` is a row
    in flight to add with the new usage row's id (a cost the provider must still tell).
    """

    conversation_id: int | None
    channel_id: str
    user_id: str
    provider: str
    model: str
    messages: tuple[tuple[str, str], ...]
    anchors: tuple[str, ...]
    usage: UsageEntry
    flight_row: int | None
    owner: str
    check_generation: bool = False
    settle: FlightEntry | None = None


@dataclass(frozen=True, slots=True)
class TurnWritten:
    conversation_id: int | None
    #: False when the chat's lease had lapsed: another process put it on the ledger.
    owned: bool = True
