"""Turns Discord interactions and messages into the core's neutral :class:`Invocation`."""

from __future__ import annotations

import discord

from bot.config import Settings
from bot.core.replies import Invocation
from bot.core.text import clean_text

PLATFORM = "discord"


def format_user(user_id: str) -> str:
    return f"<@{user_id}>"


def format_channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


def is_discord_admin(permissions: discord.Permissions) -> bool:
    """SPEC §1: Manage Server or Administrator, read from what Discord resolved for the member.

    ``default_permissions`` on the command is only a hint a server can override, so this is
    what actually decides.
    """
    return permissions.administrator or permissions.manage_guild


def spend_channel_id(channel: object, fallback: int | None) -> str:
    """The channel a chat's spend counts for: a thread rolls up to its parent channel."""
    if isinstance(channel, discord.Thread):
        return str(channel.parent_id)
    channel_id = getattr(channel, "id", None) or fallback
    return str(channel_id)


def message_text(message: discord.Message) -> str:
    """A message's content, cleaned (:func:`~bot.core.text.clean_text`): the gateway's JSON
    can carry lone surrogates and NULs, which no HTTP client encodes and PostgreSQL refuses."""
    return clean_text(message.content)


def _guild_name(name: str | None) -> str | None:
    return clean_text(name or "") or None


def _is_listed_admin(settings: Settings, user_id: str) -> bool:
    return f"{PLATFORM}:{user_id}" in settings.admins


def from_interaction(interaction: discord.Interaction, settings: Settings) -> Invocation:
    """The Invocation of a guild interaction (callers make sure it came from a guild)."""
    assert interaction.guild_id is not None
    user_id = str(interaction.user.id)
    guild = interaction.guild
    return Invocation(
        platform=PLATFORM,
        workspace_id=str(interaction.guild_id),
        channel_id=spend_channel_id(interaction.channel, interaction.channel_id),
        user_id=user_id,
        is_admin=is_discord_admin(interaction.permissions) or _is_listed_admin(settings, user_id),
        workspace_name=_guild_name(guild.name) if guild is not None else None,
        format_user=format_user,
        format_channel=format_channel,
    )


def from_message(message: discord.Message, settings: Settings) -> Invocation:
    """The Invocation of a guild message (a reply continuing a conversation)."""
    assert message.guild is not None
    user_id = str(message.author.id)
    author = message.author
    perms_admin = isinstance(author, discord.Member) and is_discord_admin(author.guild_permissions)
    return Invocation(
        platform=PLATFORM,
        workspace_id=str(message.guild.id),
        channel_id=spend_channel_id(message.channel, message.channel.id),
        user_id=user_id,
        is_admin=perms_admin or _is_listed_admin(settings, user_id),
        workspace_name=_guild_name(message.guild.name),
        format_user=format_user,
        format_channel=format_channel,
    )
