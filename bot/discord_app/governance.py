"""The governance application commands (SPEC §2, §5a, §5b): ``prompt``, ``access`` and
``audit``. Each builds a core command from typed options and hands it to the :class:`Bridge`.

``prompt`` and ``access`` mix what anyone may see with what only admins may change, so they
carry no ``default_permissions``; ``audit`` is admins' only. Either way the server-side check
in the bridge decides.
"""

from __future__ import annotations

from typing import Any, Literal

import discord
from discord import app_commands

from bot.core import commands as c
from bot.core.policy_commands import DEFAULT_AUDIT_ROWS, MAX_AUDIT_ROWS, MAX_PROMPT_CHARS
from bot.discord_app.bridge import Bridge

Switch = Literal["on", "off"]


@app_commands.guild_only()
class Prompt(app_commands.Group, name="prompt", description="The system prompt chats send"):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    @app_commands.command(name="show", description="This channel's and the server's prompt")
    async def show(self, interaction: discord.Interaction) -> None:
        await self.bridge.run(interaction, c.PromptShow(), ephemeral=True)

    @app_commands.command(name="set", description="Set the system prompt (admins)")
    @app_commands.describe(
        text="What every chat here starts with", channel="This channel's, not the server's"
    )
    async def set_(
        self,
        interaction: discord.Interaction,
        text: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        channel: bool = False,
    ) -> None:
        await self.bridge.run(interaction, c.PromptSet(text.strip(), channel), ephemeral=True)

    @app_commands.command(name="clear", description="Remove the system prompt (admins)")
    @app_commands.describe(channel="This channel's, not the server's")
    async def clear(self, interaction: discord.Interaction, channel: bool = False) -> None:
        await self.bridge.run(interaction, c.PromptClear(channel), ephemeral=True)


@app_commands.guild_only()
class Access(app_commands.Group, name="access", description="Who may chat here"):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    @app_commands.command(name="show", description="Whether chats are on here, and for you")
    async def show(self, interaction: discord.Interaction) -> None:
        await self.bridge.run(interaction, c.AccessShow(), ephemeral=True)

    @app_commands.command(name="channel", description="Turn chats in this channel on or off")
    @app_commands.describe(state="on or off")
    async def channel(self, interaction: discord.Interaction, state: Switch) -> None:
        await self.bridge.run(interaction, c.AccessChannel(state == "on"), ephemeral=True)

    @app_commands.command(name="user", description="Turn one member's chats on or off")
    @app_commands.describe(user="The member", state="on or off")
    async def user(
        self, interaction: discord.Interaction, user: discord.User, state: Switch
    ) -> None:
        command = c.AccessUser(str(user.id), state == "on")
        await self.bridge.run(interaction, command, ephemeral=True)


def audit_command(bridge: Bridge) -> app_commands.Command[Any, ..., Any]:
    @app_commands.command(name="audit", description="The latest admin changes (admins)")
    @app_commands.describe(
        count=f"How many (default {DEFAULT_AUDIT_ROWS}, at most {MAX_AUDIT_ROWS})"
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def audit(
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, MAX_AUDIT_ROWS] = DEFAULT_AUDIT_ROWS,
    ) -> None:
        await bridge.run(interaction, c.AuditShow(count), ephemeral=True)

    return audit
