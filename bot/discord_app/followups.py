"""Reply-chain follow-ups: replying to one of the bot's answers continues that conversation.

The conversation and its history come from our database (the answer's message id is an
anchor), never from Discord's message history.
"""

from __future__ import annotations

import logging
import re
from functools import partial

import discord

from bot.discord_app import context
from bot.discord_app.attachments import after_download
from bot.discord_app.bridge import Bridge
from bot.discord_app.notices import deliver_notices
from bot.discord_app.render import stream_answer
from bot.discord_app.stream import NO_MENTIONS, ReplySink

log = logging.getLogger(__name__)

UNREADABLE = (
    "I could not read that reply; mention me in it, or ask the server's bot owner to enable "
    "the Message Content intent."
)
_REPLY_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def anchor(message_id: int) -> str:
    return f"discord:{message_id}"


def _strip_mention(content: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", "", content).strip()


async def handle_message(bridge: Bridge, me: discord.ClientUser, message: discord.Message) -> None:
    ref = message.reference
    if (
        message.author.bot
        or message.guild is None
        or ref is None
        or ref.message_id is None
        or message.type not in _REPLY_TYPES
    ):
        return
    resolved = ref.resolved
    # Discord usually includes the replied-to message: skip replies to anyone else without a
    # database query. Without it (deleted, or not sent), the anchor lookup decides.
    if isinstance(resolved, discord.Message) and resolved.author.id != me.id:
        return
    ctx = context.from_message(message, bridge.settings)
    conversation = await bridge.dispatcher.find_conversation(ctx, anchor(ref.message_id))
    if conversation is None:
        return
    prompt = _strip_mention(context.message_text(message), me.id)
    if not prompt:
        await message.reply(UNREADABLE, allowed_mentions=NO_MENTIONS, mention_author=False)
        return
    sink = bridge.reply_sink(ReplySink(message), message.channel.id)
    replies = after_download(
        bridge.downloads,
        message.attachments,
        lambda files: bridge.dispatcher.follow_up(ctx, conversation, prompt, attachments=files),
    )
    with bridge.tasks.track():
        outcome = await stream_answer(
            replies,
            sink,
            interval=bridge.edit_interval,
            anchor=partial(bridge.remember, ctx, frozenset()),
        )
    # Not reached when cancelled (shutdown): then another process finishes the message.
    sink.end()
    if outcome.notices and bridge.client is not None:
        await deliver_notices(
            bridge.client, outcome.notices, channel=message.channel, asker_id=ctx.user_id
        )
