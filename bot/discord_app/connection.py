"""Where the client connects: REST base and gateway overrides, and the shard plan.

discord.py builds every REST URL (bot routes and the webhook routes interactions use) from
the class attribute ``discord.http.Route.BASE``, and connects the gateway to
``DiscordWebSocket.DEFAULT_GATEWAY`` unless ``GET /gateway/bot`` is asked. Those two class
attributes are the library's only seams for this, so they are set process-wide; that matches
the configuration, which is read once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.config import Settings
from bot.core.errors import ConfigurationError

DEFAULT_API_BASE = Route.BASE
DEFAULT_GATEWAY = DiscordWebSocket.DEFAULT_GATEWAY


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at DISCORD_API_BASE and DISCORD_GATEWAY_URL (or Discord's own)."""
    Route.BASE = settings.discord_api_base.rstrip("/")
    set_gateway(settings.discord_gateway_url)


def set_gateway(url: str | None) -> None:
    # INVALIDATE_SESSION makes discord.py fall back to DEFAULT_GATEWAY, so the override
    # must live there rather than only in the first connection's arguments.
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url) if url else DEFAULT_GATEWAY


def reset_endpoints() -> None:
    Route.BASE = DEFAULT_API_BASE
    DiscordWebSocket.DEFAULT_GATEWAY = DEFAULT_GATEWAY


def needs_gateway_lookup(settings: Settings) -> bool:
    """A self-hosted REST base without a gateway URL: ask it (``GET /gateway/bot``)."""
    custom_base = settings.discord_api_base.rstrip("/") != DEFAULT_API_BASE
    return custom_base and not settings.discord_gateway_url


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """How this process shards. ``sharded`` selects ``AutoShardedClient``."""

    sharded: bool
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None

    def client_options(self) -> dict[str, Any]:
        if not self.sharded:
            return {}
        options: dict[str, Any] = {"shard_count": self.shard_count}
        if self.shard_ids is not None:
            options["shard_ids"] = list(self.shard_ids)
        return options

    @property
    def runs_shard_zero(self) -> bool:
        """Only one process of a multi-process deployment should sync commands: shard 0's."""
        return self.shard_ids is None or 0 in self.shard_ids


def shard_plan(settings: Settings) -> ShardPlan:
    """Read DISCORD_AUTO_SHARD, DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS."""
    count = settings.discord_shard_count
    if count is not None and count < 1:
        raise ConfigurationError("DISCORD_SHARD_COUNT must be 1 or more.")
    raw_ids = (settings.discord_shard_ids or "").strip()
    if raw_ids:
        try:
            ids = tuple(sorted({int(part) for part in raw_ids.split(",") if part.strip()}))
        except ValueError:
            raise ConfigurationError(
                "DISCORD_SHARD_IDS must be comma-separated shard numbers, e.g. 0,1."
            ) from None
        if count is None:
            raise ConfigurationError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total).")
        if not ids or any(i < 0 or i >= count for i in ids):
            raise ConfigurationError(
                f"DISCORD_SHARD_IDS must be between 0 and {count - 1} (DISCORD_SHARD_COUNT - 1)."
            )
        return ShardPlan(True, count, ids)
    if settings.discord_auto_shard or (count is not None and count > 1):
        # One process runs every shard; without a count Discord recommends one.
        return ShardPlan(True, count, None)
    return ShardPlan(False)


def intents(*, message_content: bool = True) -> discord.Intents:
    """Guilds (channels, threads), guild messages (reply chains), and message content so a
    reply that does not ping the bot can still be read (privileged; see README)."""
    result = discord.Intents.none()
    result.guilds = True
    result.guild_messages = True
    result.message_content = message_content
    return result
