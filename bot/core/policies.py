"""Channel policies and access (SPEC §5a): the system prompt of the workspace and of a
channel, and who may chat (a channel turned off, a person turned off).

Anyone may see what applies to them; changing it is admin-only (checked here) and recorded
in the audit log in the same transaction. Access rules refuse chats, never commands, so an
admin can always turn things back on. They refuse admins' chats too: they are rules about a
place and a person, and a chat is not an admin action.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import audit, people, permissions
from bot.core.deps import Deps
from bot.core.errors import AccessDenied
from bot.core.ports import WORKSPACE_BUDGET, ChatPolicy
from bot.core.replies import Invocation
from bot.core.workspaces import Workspaces

CHANGE_PROMPT = "change the system prompt"
CHANGE_ACCESS = "change who may chat"

CHANNEL_OFF = (
    "Chats are turned off in this channel; a workspace admin can turn them on with "
    "/access channel on."
)
USER_OFF = (
    "Your chats are turned off in this workspace; a workspace admin can turn them back on "
    "with /access user <you> on."
)


def check_access(policy: ChatPolicy) -> None:
    """Refuse a chat the access rules turn away: one sentence, nothing sent, nothing charged."""
    if policy.user_off:
        raise AccessDenied(USER_OFF)
    if policy.channel_off:
        raise AccessDenied(CHANNEL_OFF)


def system_prompt(policy: ChatPolicy) -> str | None:
    """The channel's prompt, else the workspace's."""
    return policy.channel_prompt or policy.workspace_prompt


@dataclass(frozen=True, slots=True)
class AccessState:
    channel_off: bool
    user_off: bool
    #: Everyone turned off in the workspace (shown to admins only).
    users_off: tuple[str, ...]


class Policies:
    def __init__(self, deps: Deps, workspaces: Workspaces) -> None:
        self.deps = deps
        self.workspaces = workspaces

    async def policy(self, ctx: Invocation) -> ChatPolicy:
        """What applies to the caller here (prompts, channel model, access)."""
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            return await tx.policies.for_chat(ws_id, ctx.channel_id, ctx.user_id)

    async def set_prompt(self, ctx: Invocation, text: str | None, *, channel: bool) -> bool:
        """Set (``text``) or clear (None) the channel's or the workspace's system prompt;
        False when clearing one that was not set."""
        permissions.require_admin(self.deps.settings, ctx, CHANGE_PROMPT)
        ws_id = await self.workspaces.id_of(ctx)
        where = ctx.channel_id if channel else WORKSPACE_BUDGET
        async with self.deps.store.transaction() as tx:
            current = await tx.policies.for_chat(ws_id, ctx.channel_id, ctx.user_id)
            old = current.channel_prompt if channel else current.workspace_prompt
            if text is None and old is None:
                return False
            await tx.policies.set_prompt(ws_id, where, text, by=ctx.user_id)
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.PROMPT_SET if text is not None else audit.PROMPT_CLEAR,
                target=audit.channel_target(ctx.channel_id) if channel else audit.WORKSPACE,
                old=old,
                new=text,
            )
        return True

    async def access(self, ctx: Invocation) -> AccessState:
        ws_id = await self.workspaces.id_of(ctx)
        admin = permissions.is_admin(self.deps.settings, ctx)
        async with self.deps.store.transaction() as tx:
            policy = await tx.policies.for_chat(ws_id, ctx.channel_id, ctx.user_id)
            everyone = await tx.policies.users_off(ws_id) if admin else []
        return AccessState(policy.channel_off, policy.user_off, tuple(everyone))

    async def set_channel_access(self, ctx: Invocation, *, on: bool) -> bool:
        """Turn chats in this channel on or off; False when it already was so."""
        permissions.require_admin(self.deps.settings, ctx, CHANGE_ACCESS)
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            current = await tx.policies.for_chat(ws_id, ctx.channel_id, ctx.user_id)
            if current.channel_off == (not on):
                return False
            await tx.policies.set_channel_off(ws_id, ctx.channel_id, not on, by=ctx.user_id)
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.ACCESS_CHANNEL,
                target=audit.channel_target(ctx.channel_id),
                old=_switch(current.channel_off),
                new=_switch(not on),
            )
        return True

    async def set_user_access(self, ctx: Invocation, user: str, *, on: bool) -> bool:
        """Turn one person's chats on or off everywhere in the workspace; False when they
        already were so."""
        permissions.require_admin(self.deps.settings, ctx, CHANGE_ACCESS)
        user_id = people.user_id(ctx, user)
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            if not await tx.policies.set_user_off(ws_id, user_id, not on, by=ctx.user_id):
                return False
            await audit.record(
                tx,
                self.deps,
                ctx,
                ws_id,
                action=audit.ACCESS_USER,
                target=audit.user_target(user_id),
                old=_switch(on),
                new=_switch(not on),
            )
        return True


def _switch(off: bool) -> str:
    return "off" if off else "on"


# -- texts ------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def prompt_text(policy: ChatPolicy) -> str:
    lines = []
    if policy.channel_prompt:
        lines += [
            "This channel's system prompt (chats here send it):",
            _quoted(policy.channel_prompt),
        ]
    else:
        lines.append("This channel has no system prompt of its own.")
    if policy.workspace_prompt:
        note = "" if policy.channel_prompt else " (chats here send it)"
        lines += [f"The workspace's system prompt{note}:", _quoted(policy.workspace_prompt)]
    else:
        lines.append("The workspace has no system prompt.")
    return "\n".join(lines)


def prompt_changed_text(*, set_: bool, channel: bool, changed: bool) -> str:
    where = "this channel" if channel else "the workspace"
    if set_:
        return f"Saved the system prompt of {where}; new chats there send it first."
    if changed:
        return f"Removed the system prompt of {where}."
    return f"There was no system prompt on {where} to remove."


def access_text(state: AccessState, ctx: Invocation) -> str:
    channel = "off" if state.channel_off else "on"
    you = "off" if state.user_off else "on"
    lines = [f"Chats in this channel: {channel}. Your chats in this workspace: {you}."]
    if state.users_off:
        people_off = ", ".join(ctx.format_user(u) for u in state.users_off)
        lines.append(f"People whose chats are off: {people_off}.")
    return "\n".join(lines)


def access_changed_text(*, who: str, on: bool, changed: bool) -> str:
    state = "on" if on else "off"
    if not changed:
        return f"Chats for {who} were already {state}."
    return f"Chats for {who} are now {state}."
