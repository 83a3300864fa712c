"""Renders the core's neutral replies in Discord: answers streamed, everything else edited
into the deferred response, split at 2,000 characters, with mentions disabled."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.core.charts import BAR_COLOR, SpendChart, draw_png
from bot.core.chat.sources import Source
from bot.core.dispatch import failure_sentence
from bot.core.format import DISCORD_MESSAGE_LIMIT, split_message, split_with_footer
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    CostsReply,
    ErrorReply,
    KeyPromptReply,
    Notice,
    Reply,
    TextReply,
)
from bot.discord_app.stream import NO_MENTIONS, LiveAnswer, MessageSink

log = logging.getLogger(__name__)


def answer_parts(done: ChatCompleted) -> list[str]:
    """The whole answer split for Discord; notices, sources and the footer (as subtext) go
    last."""
    tail = "\n".join([*done.notices, *source_lines(done.sources), f"-# {done.footer}"])
    return split_with_footer(done.text, tail, DISCORD_MESSAGE_LIMIT)


def source_lines(sources: Sequence[Source]) -> list[str]:
    """Sources as masked links around ``<url>``, which Discord shows without an embed."""
    if not sources:
        return []
    lines = ["**Sources**"]
    for number, source in enumerate(sources, start=1):
        title = discord.utils.escape_markdown(source.title).replace("[", "(").replace("]", ")")
        url = source.url.replace(">", "%3E").replace(")", "%29")
        lines.append(f"{number}. [{title}](<{url}>)")
    return lines


Anchor = Callable[[ChatCompleted, list[int]], Awaitable[None]]


@dataclass
class ChatOutcome:
    completed: ChatCompleted | None = None
    #: A private error that could not be shown in the (public) answer messages.
    private_error: str | None = None
    #: Budget notices, to deliver once the answer is shown (``bot.discord_app.notices``).
    notices: list[Notice] = field(default_factory=list)


async def stream_answer(
    replies: AsyncIterator[Reply], sink: MessageSink, *, interval: float, anchor: Anchor
) -> ChatOutcome:
    """Stream one chat's replies into ``sink``; returns how it ended.

    ``anchor`` is called for the answer's messages before the final render (and for parts
    that render creates, right after), so the answer is never complete on screen while a
    reply to it could still miss its conversation.
    """
    live = LiveAnswer(sink, interval=interval)
    outcome = ChatOutcome()
    try:
        async for reply in replies:
            if isinstance(reply, ChatStarted):
                await live.open()
            elif isinstance(reply, ChatDelta):
                live.append(reply.text)
            elif isinstance(reply, Notice):
                outcome.notices.append(reply)
            elif isinstance(reply, ChatCompleted):
                outcome.completed = reply
                before = sink.message_ids
                await anchor(reply, before)
                await live.finish(answer_parts(reply))
                await anchor(reply, [i for i in sink.message_ids if i not in before])
            elif isinstance(reply, ChatFailed):
                await live.finish([reply.text])
            elif isinstance(reply, ErrorReply | TextReply):
                if reply.private:
                    await live.finish([])
                    outcome.private_error = reply.text
                else:
                    await live.finish(split_message(reply.text, DISCORD_MESSAGE_LIMIT))
    except Exception as exc:
        # The core never raises; Discord can. The user still gets one sentence.
        log.exception("rendering a chat answer failed")
        await live.abort()
        try:
            await live.finish([failure_sentence(exc)])
        except Exception:
            log.exception("could not report the failure either")
    finally:
        await live.abort()
    return outcome


async def send_replies(
    interaction: discord.Interaction, replies: AsyncIterator[Reply], *, ephemeral: bool
) -> None:
    """Show a command's replies in the response deferred with ``ephemeral``.

    A private reply to a publicly deferred command cannot turn the public "thinking" message
    private, so that message is deleted and the reply goes out as an ephemeral follow-up.
    """
    texts: list[tuple[str, bool]] = []
    chart: SpendChart | None = None
    async for reply in replies:
        if isinstance(reply, CostsReply) and reply.chart is not None:
            chart = reply.chart
        if isinstance(reply, TextReply | ErrorReply):
            texts.append((reply.text, reply.private))
        elif isinstance(reply, ChatFailed):
            texts.append((reply.text, False))
        elif isinstance(reply, KeyPromptReply):
            texts.append(("Use /apikey set without a key to open the key form.", True))
    if not texts:
        texts.append(("Done.", ephemeral))
    private = any(p for _, p in texts) and not ephemeral
    parts = split_message("\n".join(t for t, _ in texts), DISCORD_MESSAGE_LIMIT)
    # The chart goes with the last part: one file, shown by the embed that names it.
    extra = await chart_attachment(chart) if chart is not None else {}
    if private:
        await interaction.delete_original_response()
        for index, part in enumerate(parts):
            last = extra if index == len(parts) - 1 else {}
            await interaction.followup.send(
                part, ephemeral=True, allowed_mentions=NO_MENTIONS, **last
            )
        return
    first = extra if len(parts) == 1 else {}
    await interaction.edit_original_response(
        content=parts[0],
        allowed_mentions=NO_MENTIONS,
        attachments=first.get("files", discord.utils.MISSING),
        embed=first.get("embed", discord.utils.MISSING),
    )
    for index, part in enumerate(parts[1:], start=2):
        last = extra if index == len(parts) else {}
        await interaction.followup.send(
            part, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS, **last
        )


async def chart_attachment(chart: SpendChart) -> dict[str, Any]:
    """``files`` and ``embed`` arguments showing ``chart`` (drawn off the event loop); none
    when drawing fails, so the text still goes out."""
    try:
        png = await draw_png(chart)
    except Exception:
        log.exception("could not draw the spend chart")
        return {}
    file = discord.File(io.BytesIO(png), filename=chart.filename, description=chart.alt_text)
    embed = discord.Embed(colour=discord.Colour.from_rgb(*BAR_COLOR))
    embed.set_image(url=f"attachment://{chart.filename}")
    return {"files": [file], "embed": embed}


async def say(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    """One sentence as the first response, or as a follow-up when already responded."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(
            text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
        )
