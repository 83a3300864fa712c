"""Workspace-scoped store functions: keyword-only, async, taking the session first.

Every function is scoped by ``workspace_id`` (the internal primary key) so one tenant never
sees another's rows; the single exception is ``rotate_keys``, an operator action.
"""

from storage.records import WORKSPACE_BUDGET, NewModel, UsageSummary, UsageTotals
from storage.stores.allowlist import (
    add_model,
    add_models_bulk,
    get_model,
    list_models,
    remove_model,
)
from storage.stores.budgets import (
    add_reservation,
    claim_notice,
    clear_budget,
    delete_reservation,
    get_budgets,
    has_budgets,
    list_budgets,
    lock_budgets,
    prune_lapsed_reservations,
    prune_reservations,
    renew_reservations,
    reserved_sum,
    set_budget,
    spend_by_channel,
)
from storage.stores.conversations import (
    ConversationNotFoundError,
    add_anchor,
    add_message,
    add_messages,
    create_conversation,
    find_conversation_by_anchor,
    get_conversation,
    get_messages,
    start_conversation,
)
from storage.stores.keys import delete_key, get_key, list_keys, rotate_keys, set_key
from storage.stores.rollups import rebuild_rollups, spent_since
from storage.stores.usage import (
    find_usage_by_generation,
    list_usage,
    record_usage,
    stream_usage,
    summarize_ledger,
    summarize_usage,
    update_usage_cost,
)
from storage.stores.workspaces import (
    find_workspaces,
    get_or_create_workspace,
    get_workspace,
    get_workspace_by_id,
    set_default_model,
)

__all__ = [
    "WORKSPACE_BUDGET",
    "ConversationNotFoundError",
    "NewModel",
    "UsageSummary",
    "UsageTotals",
    "add_anchor",
    "add_message",
    "add_messages",
    "add_model",
    "add_models_bulk",
    "add_reservation",
    "claim_notice",
    "clear_budget",
    "create_conversation",
    "delete_key",
    "delete_reservation",
    "find_conversation_by_anchor",
    "find_usage_by_generation",
    "find_workspaces",
    "get_budgets",
    "get_conversation",
    "get_key",
    "get_messages",
    "get_model",
    "get_or_create_workspace",
    "get_workspace",
    "get_workspace_by_id",
    "has_budgets",
    "list_budgets",
    "list_keys",
    "list_models",
    "list_usage",
    "lock_budgets",
    "prune_lapsed_reservations",
    "prune_reservations",
    "rebuild_rollups",
    "record_usage",
    "remove_model",
    "renew_reservations",
    "reserved_sum",
    "rotate_keys",
    "set_budget",
    "set_default_model",
    "set_key",
    "spend_by_channel",
    "spent_since",
    "start_conversation",
    "stream_usage",
    "summarize_ledger",
    "summarize_usage",
    "update_usage_cost",
]
