"""Workspace-scoped store functions: keyword-only, async, taking the session first.

Every function is scoped by ``workspace_id`` (the internal primary key) so one tenant never
sees another's rows; the single exception is ``rotate_keys``, an operator action.
"""

from storage.stores.allowlist import (
    NewModel,
    add_model,
    add_models_bulk,
    get_model,
    list_models,
    remove_model,
)
from storage.stores.conversations import (
    ConversationNotFoundError,
    add_anchor,
    add_message,
    create_conversation,
    find_conversation_by_anchor,
    get_conversation,
    get_messages,
)
from storage.stores.keys import delete_key, get_key, rotate_keys, set_key
from storage.stores.usage import (
    UsageSummary,
    UsageTotals,
    list_usage,
    record_usage,
    summarize_usage,
)
from storage.stores.workspaces import (
    find_workspaces,
    get_or_create_workspace,
    get_workspace,
    get_workspace_by_id,
    set_default_model,
)

__all__ = [
    "ConversationNotFoundError",
    "NewModel",
    "UsageSummary",
    "UsageTotals",
    "add_anchor",
    "add_message",
    "add_model",
    "add_models_bulk",
    "create_conversation",
    "delete_key",
    "find_conversation_by_anchor",
    "find_workspaces",
    "get_conversation",
    "get_key",
    "get_messages",
    "get_model",
    "get_or_create_workspace",
    "get_workspace",
    "get_workspace_by_id",
    "list_models",
    "list_usage",
    "record_usage",
    "remove_model",
    "rotate_keys",
    "set_default_model",
    "set_key",
    "summarize_usage",
]
