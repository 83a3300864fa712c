"""The discord.py client: command tree, reply-chain listener, sync on start, sharding, and the
journal of answers in flight (started with the client, closed after its answers at shutdown)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.config import Settings
from bot.core.dispatch import Dispatcher, failure_sentence
from bot.core.lifecycle import SHUTDOWN_GRACE_SECONDS
from bot.core.service import ProviderService
from bot.discord_app import connection
from bot.discord_app.bridge import Bridge
from bot.discord_app.commands import build_commands
from bot.discord_app.followups import handle_message
from bot.discord_app.inflight import AnswersInFlight
from bot.discord_app.render import say
from bot.discord_app.sync import sync_if_changed

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

GUILD_ONLY = "routerbot works in servers only; use its commands in a server channel."
OUT_OF_DATE = "That command is out of date; try again in a minute."


class RouterbotTree(app_commands.CommandTree[discord.Client]):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.guild_id is None:
            if interaction.type is discord.InteractionType.application_command:
                await say(interaction, GUILD_ONLY)
            return False
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Whatever went wrong, the member gets one sentence; the traceback goes to the log."""
        if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
            text = OUT_OF_DATE
        else:
            text = failure_sentence(error)
            log.error("application command failed", exc_info=error)
        if interaction.type is discord.InteractionType.autocomplete:
            return  # an autocomplete cannot carry a message
        try:
            await say(interaction, text)
        except discord.HTTPException:
            log.warning("could not report an application command error")


class RouterbotClient(discord.Client):
    def __init__(
        self,
        bridge: Bridge,
        *,
        message_content: bool = True,
        sync_commands: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            intents=connection.intents(message_content=message_content),
            # The default for everything sent, on top of the explicit argument on each send:
            # model output can contain @everyone.
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.bridge = bridge
        bridge.client = self
        self.sync_commands = sync_commands
        self.shutdown_grace = SHUTDOWN_GRACE_SECONDS
        self.tree = RouterbotTree(self)
        for command in build_commands(bridge):
            self.tree.add_command(command)
        self._wind_down: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        settings = self.bridge.settings
        if self.bridge.inflight is not None:
            self.bridge.inflight.start(self)
        if connection.needs_gateway_lookup(settings):
            _shards, url, _limits = await self.http.get_bot_gateway()
            connection.set_gateway(url)
        if self.sync_commands and self.application_id is not None:
            await sync_if_changed(
                self.tree,
                application_id=self.application_id,
                api_base=settings.discord_api_base,
                data_dir=settings.routerbot_data_dir,
            )

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s in %d servers", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None:
            await handle_message(self.bridge, self.user, message)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("error in Discord event %s", event_method)

    async def close(self) -> None:
        """Let the answers streaming now finish (within ``shutdown_grace``), close the answer
        journal, then disconnect."""
        if self._wind_down is None:
            self._wind_down = asyncio.create_task(self._finish_answers())
        await self._wind_down
        await super().close()

    async def _finish_answers(self) -> None:
        await self.bridge.tasks.shutdown(self.shutdown_grace)
        await self.bridge.downloads.aclose()
        if self.bridge.inflight is not None:
            # Answers cancelled just now stay in the journal, for a live process to finish.
            await self.bridge.inflight.aclose()


class ShardedRouterbotClient(RouterbotClient, discord.AutoShardedClient):
    """The same client over ``AutoShardedClient`` (MRO: our hooks, then its shard handling)."""


def build_client(
    settings: Settings,
    service: ProviderService,
    dispatcher: Dispatcher,
    *,
    message_content: bool = True,
    runtime: Runtime | None = None,
    **options: Any,
) -> RouterbotClient:
    """A client for these settings: endpoints, shard plan, intents. Not yet connected.

    With ``runtime``, answers are journalled in its database (tokens encrypted with its key
    vault) and the client finishes answers cut short by Discord processes that died.
    ``options`` go to ``discord.Client`` (e.g. ``guild_ready_timeout``)."""
    plan = connection.shard_plan(settings)
    connection.configure_endpoints(settings)
    inflight = None
    if runtime is not None:
        inflight = AnswersInFlight(
            runtime.store,
            runtime.vault,
            interval=settings.routerbot_answer_heartbeat_seconds,
            stale=settings.routerbot_answer_stale_seconds,
        )
    bridge = Bridge(settings, service, dispatcher, inflight=inflight)
    cls = ShardedRouterbotClient if plan.sharded else RouterbotClient
    return cls(
        bridge,
        message_content=message_content,
        sync_commands=plan.runs_shard_zero,
        **plan.client_options(),
        **options,
    )
