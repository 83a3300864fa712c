"""The audit log (SPEC §5b): every admin change is recorded by :func:`record` inside the
change's own transaction (so the log can never disagree with what changed), and ``/audit
[n]`` shows the latest to admins.

What is recorded: time (UTC), platform, user, action, target, old → new value. Keys appear
only masked. Refused attempts are not recorded: a refusal changes nothing, some front-ends
refuse before the core is reached (Discord), and a member could otherwise fill the log.

Targets are written ``workspace``, ``channel:<id>``, ``user:<id>``, ``each-user``,
``model:<id>`` and ``key:<provider>``, so exports can be filtered by kind.
"""

from __future__ import annotations

from bot.core import permissions
from bot.core.deps import Deps
from bot.core.ports import AuditRecord, AuditRow, UnitOfWork
from bot.core.replies import Invocation
from bot.core.workspaces import Workspaces

#: The action names, as stored and exported.
KEY_SET = "apikey.set"
KEY_CLEAR = "apikey.clear"
MODEL_ADD = "models.add"
MODEL_REMOVE = "models.remove"
MODEL_DEFAULT = "models.default"
BUDGET_SET = "budget.set"
BUDGET_CLEAR = "budget.clear"
PROMPT_SET = "prompt.set"
PROMPT_CLEAR = "prompt.clear"
ACCESS_CHANNEL = "access.channel"
ACCESS_USER = "access.user"

WORKSPACE = "workspace"
EACH_USER = "each-user"

#: Longer values are shortened in ``/audit`` (exports carry them whole).
SHOWN_VALUE_CHARS = 80


def channel_target(channel_id: str) -> str:
    return f"channel:{channel_id}"


def user_target(user_id: str) -> str:
    return f"user:{user_id}"


async def record(
    tx: UnitOfWork,
    deps: Deps,
    ctx: Invocation,
    workspace_id: int,
    *,
    action: str,
    target: str,
    old: str | None,
    new: str | None,
) -> None:
    """Write one entry in ``tx``: call it in the same transaction as the change."""
    await tx.audit.record(
        AuditRecord(
            workspace_id=workspace_id,
            created_at=deps.clock(),
            platform=ctx.platform,
            user_id=ctx.user_id,
            action=action,
            target=target,
            old_value=old,
            new_value=new,
        )
    )


class Audit:
    def __init__(self, deps: Deps, workspaces: Workspaces) -> None:
        self.deps = deps
        self.workspaces = workspaces

    async def latest(self, ctx: Invocation, count: int) -> list[AuditRow]:
        permissions.require_admin(self.deps.settings, ctx, "see the audit log")
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            return await tx.audit.latest(ws_id, count)


# -- texts ------------------------------------------------------------------------------------


def target_text(target: str, ctx: Invocation) -> str:
    kind, _, value = target.partition(":")
    if kind == "channel":
        return f"channel {ctx.format_channel(value)}"
    if kind == "user":
        return ctx.format_user(value)
    if kind == "model":
        return f"`{value}`"
    if kind == "key":
        return f"{value} key"
    return "each person" if target == EACH_USER else target


def _value(value: str | None) -> str:
    if value is None or value == "":
        return "—"
    flat = " ".join(value.split())
    return flat if len(flat) <= SHOWN_VALUE_CHARS else flat[: SHOWN_VALUE_CHARS - 1] + "…"


def audit_text(rows: list[AuditRow], ctx: Invocation) -> str:
    if not rows:
        return "No admin changes are on record for this workspace yet."
    lines = [f"The latest {len(rows)} admin change(s), newest first (UTC):"]
    for row in rows:
        lines.append(
            f"• {row.created_at:%Y-%m-%d %H:%M} · {ctx.format_user(row.user_id)} · {row.action} · "
            f"{target_text(row.target, ctx)} · {_value(row.old_value)} → {_value(row.new_value)}"
        )
    return "\n".join(lines)
