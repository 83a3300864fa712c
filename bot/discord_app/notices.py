"""Delivers the core's budget notices on Discord once the answer they follow is shown: in the
channel, privately to the asker (an ephemeral follow-up to a command; a direct message after
a reply-chain follow-up, which has no private reply), or as a direct message to an admin."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord

from bot.core.replies import Notice
from bot.discord_app.stream import NO_MENTIONS

log = logging.getLogger(__name__)


def _is_discord_id(user_id: str | None) -> bool:
    """Discord ids are ASCII digits (``str.isdigit`` alone also accepts "²")."""
    return bool(user_id) and str(user_id).isascii() and str(user_id).isdigit()


async def direct_message(client: discord.Client, user_id: str, text: str) -> None:
    """A DM to ``user_id`` (``POST /users/@me/channels``, then the message)."""
    channel = await client.create_dm(discord.Object(id=int(user_id)))
    await channel.send(text, allowed_mentions=NO_MENTIONS)


async def deliver_notices(
    client: discord.Client,
    notices: Sequence[Notice],
    *,
    channel: discord.abc.Messageable | None,
    interaction: discord.Interaction | None = None,
    asker_id: str | None = None,
) -> None:
    """Send each notice where it belongs; one Discord refuses is logged, not raised (the
    answer is already shown)."""
    for notice in notices:
        try:
            if notice.audience == "channel" and channel is not None:
                await channel.send(notice.text, allowed_mentions=NO_MENTIONS)
            elif notice.audience == "asker" and interaction is not None:
                await interaction.followup.send(
                    notice.text, ephemeral=True, allowed_mentions=NO_MENTIONS
                )
            elif notice.audience == "asker" and asker_id is not None:
                await direct_message(client, asker_id, notice.text)
            elif notice.audience == "direct" and _is_discord_id(notice.user_id):
                await direct_message(client, str(notice.user_id), notice.text)
        except (discord.HTTPException, ValueError):
            log.warning("Discord refused a budget notice (%s)", notice.audience, exc_info=True)
