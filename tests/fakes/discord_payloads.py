"""Payload builders for the fake Discord (``tests.fakes.discord``): users, guilds, channels,
members, messages and interactions, in the shapes of Discord's API v10."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
_increment = itertools.count(1)

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 31)  # view, send, use application commands
EPHEMERAL = 1 << 6
LOADING = 1 << 7
MESSAGE_CONTENT_INTENT = 1 << 15


def snowflake(shard: tuple[int, int] | None = None) -> int:
    """A fresh snowflake; with ``(shard_id, shard_count)``, one that shard owns as a guild."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    if shard is not None:
        # Discord routes a guild to shard (guild_id >> 22) % shard_count.
        shard_id, count = shard
        ms -= (ms - shard_id) % count
    return (ms << 22) | (next(_increment) & 0x3FFFFF)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class FakeUser:
    name: str
    #: What Discord resolves for the member in a channel (sent with interactions).
    permissions: int = MEMBER_PERMISSIONS
    bot: bool = False
    id: int = field(default_factory=snowflake)

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class FakeChannel:
    name: str
    #: 0: text channel, 11: public thread.
    type: int = 0
    parent_id: int | None = None
    id: int = field(default_factory=snowflake)

    def payload(self, guild_id: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "guild_id": str(guild_id),
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.type in (10, 11, 12):
            data |= {
                "owner_id": "1",
                "message_count": 0,
                "member_count": 1,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": now_iso(),
                    "locked": False,
                },
            }
        return data


@dataclass
class FakeGuild:
    name: str
    id: int = field(default_factory=snowflake)
    channels: list[FakeChannel] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.channels:
            general = FakeChannel("general")
            self.channels = [general, FakeChannel("ideas", type=11, parent_id=general.id)]

    @property
    def text_channel(self) -> FakeChannel:
        return next(c for c in self.channels if c.type == 0)

    @property
    def thread(self) -> FakeChannel:
        return next(c for c in self.channels if c.type == 11)

    def channel(self, channel_id: int) -> FakeChannel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def payload(self, bot: FakeUser) -> dict[str, Any]:
        everyone = {
            "id": str(self.id),
            "name": "@everyone",
            "permissions": str(MEMBER_PERMISSIONS),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": "1",
            "unavailable": False,
            "joined_at": now_iso(),
            "large": False,
            "member_count": 2,
            "features": [],
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "channels": [c.payload(self.id) for c in self.channels if c.type == 0],
            "threads": [c.payload(self.id) for c in self.channels if c.type != 0],
            "members": [member(bot)],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
        }


def member(user: FakeUser, *, with_permissions: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": user.payload(),
        "roles": [],
        "joined_at": now_iso(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "avatar": None,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_permissions:
        data["permissions"] = str(user.permissions)
    return data


def message(
    *,
    channel_id: int,
    author: FakeUser,
    content: str,
    guild_id: int | None = None,
    flags: int = 0,
    webhook_id: int | None = None,
    reference: dict[str, Any] | None = None,
    mentions: list[FakeUser] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(snowflake()),
        "channel_id": str(channel_id),
        "author": author.payload(),
        "content": content,
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [u.payload() for u in mentions or []],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": False,
        "type": 19 if reference else 0,
        "flags": flags,
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if webhook_id is not None:
        data["webhook_id"] = str(webhook_id)
        data["application_id"] = str(webhook_id)
    if reference is not None:
        data["message_reference"] = {
            "type": 0,
            "message_id": reference["id"],
            "channel_id": reference["channel_id"],
            "guild_id": reference.get("guild_id"),
        }
        data["referenced_message"] = reference
    return data


def interaction(
    *,
    kind: int,
    application_id: int,
    guild: FakeGuild,
    channel: FakeChannel,
    user: FakeUser,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": str(snowflake()),
        "application_id": str(application_id),
        "type": kind,
        "data": data,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "guild_locale": "en-US",
        "channel_id": str(channel.id),
        "channel": channel.payload(guild.id),
        "member": member(user, with_permissions=True),
        "token": "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
        "version": 1,
        "app_permissions": str(MEMBER_PERMISSIONS),
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": 10 * 1024 * 1024,
    }


def application(application_id: int, bot: FakeUser) -> dict[str, Any]:
    """``GET /oauth2/applications/@me``."""
    return {
        "id": str(application_id),
        "name": "routerbot",
        "icon": None,
        "description": "",
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": bot.payload(),
        "verify_key": "0" * 64,
        "flags": 0,
        "team": None,
        "summary": "",
        "rpc_origins": [],
        "interactions_endpoint_url": None,
        "bot": bot.payload(),
    }
