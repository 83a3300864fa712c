"""Who may do what: the one table of admin actions, used by the core and every front-end.

The core checks every admin action on the server side (``require_admin``), whatever a
front-end already did; front-ends read the same table to know when to look up whether the
caller is an admin (Slack's ``users.info``) or to refuse at once (Discord).
"""

from __future__ import annotations

from bot.config import Settings
from bot.core import commands as c
from bot.core.errors import PermissionDenied
from bot.core.replies import Invocation

#: What each admin-only command does, in the words of "Only … admins can <action>."
ADMIN_ACTIONS: dict[type[c.Command], str] = {
    c.ModelsAdd: "change the model allowlist",
    c.ModelsRemove: "change the model allowlist",
    c.ModelsDefault: "change the default model",
    c.ApiKeySet: "set the API key",
    c.ApiKeyModal: "set the API key",
    c.ApiKeyStatus: "see the API key status",
    c.ApiKeyClear: "clear the API key",
    c.BudgetShow: "see the budgets",
    c.BudgetSet: "change the budgets",
    c.BudgetClear: "change the budgets",
    c.PromptSet: "change the system prompt",
    c.PromptClear: "change the system prompt",
    c.AccessChannel: "change who may chat",
    c.AccessUser: "change who may chat",
    c.AuditShow: "see the audit log",
}
WORKSPACE_SPEND = "see the workspace's spend"


def admin_action(command: c.Command) -> str | None:
    """What ``command`` does that only admins may do; None when anyone may run it."""
    if isinstance(command, c.Costs):
        return WORKSPACE_SPEND if command.scope == "workspace" else None
    return ADMIN_ACTIONS.get(type(command))


def needs_admin(command: c.Command) -> bool:
    return admin_action(command) is not None


def is_admin(settings: Settings, ctx: Invocation) -> bool:
    """The platform says so, or ``ROUTERBOT_ADMINS`` lists ``platform:user``."""
    return ctx.is_admin or f"{ctx.platform}:{ctx.user_id}" in settings.admins


def require_admin(settings: Settings, ctx: Invocation, action: str) -> None:
    if not is_admin(settings, ctx):
        raise PermissionDenied(f"Only workspace admins can {action}.")
