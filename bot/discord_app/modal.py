"""The ``/apikey set`` form: the key is typed into a modal so it never appears in a message."""

from __future__ import annotations

import logging

import discord
from pydantic import SecretStr

from adapters.registry import PROVIDERS
from bot.core import commands as c
from bot.core.dispatch import failure_sentence
from bot.core.text import clean_key
from bot.discord_app.bridge import Bridge
from bot.discord_app.render import say, send_replies

log = logging.getLogger(__name__)

#: ``OpenRouter (sk-or-…) or Fireworks (fw_…)``: which keys the form takes.
_KEY_SHAPES = " or ".join(f"{p.display_name} ({p.key_hint})" for p in PROVIDERS)


class ApiKeyModal(discord.ui.Modal, title="Set the API key"):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__(timeout=600)
        self._bridge = bridge
        self.key: discord.ui.TextInput[ApiKeyModal] = discord.ui.TextInput(
            style=discord.TextStyle.short,
            placeholder="sk-or-v1-…",
            min_length=8,
            max_length=400,
            required=True,
        )
        self.add_item(
            discord.ui.Label(
                text="API key",
                description=f"{_KEY_SHAPES}; stored encrypted, never shown.",
                component=self.key,
            )
        )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        # Checking the key with the provider can take seconds: defer first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        secret = SecretStr(clean_key(self.key.value))
        # The member may have lost the permission since opening the form: re-derive it.
        ctx = self._bridge.ctx(interaction)
        if await self._bridge.refuse_unless_admin(interaction, ctx, c.ApiKeySet(secret)):
            return
        await send_replies(
            interaction, self._bridge.dispatcher.run(ctx, c.ApiKeySet(secret)), ephemeral=True
        )

    async def on_error(  # type: ignore[override]  # Modal's own signature has no item
        self, interaction: discord.Interaction, error: Exception, /
    ) -> None:
        log.error("the API key form failed", exc_info=error)
        await say(interaction, failure_sentence(error))


async def open_key_modal(bridge: Bridge, interaction: discord.Interaction) -> None:
    """A modal must be the first response, so nothing slow happens before it."""
    ctx = bridge.ctx(interaction)
    if await bridge.refuse_unless_admin(interaction, ctx, c.ApiKeyModal()):
        return
    await interaction.response.send_modal(ApiKeyModal(bridge))
