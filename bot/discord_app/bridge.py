"""What every Discord handler needs: the core, the settings, the autocomplete cache, and the
steps shared by all commands (admin gate, defer, run, render)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import discord

from bot.config import Settings
from bot.core import commands as c
from bot.core import permissions
from bot.core.dispatch import Dispatcher
from bot.core.lifecycle import AnswerTasks
from bot.core.live import EDIT_INTERVAL
from bot.core.replies import ChatCompleted, Invocation
from bot.core.service import ProviderService
from bot.discord_app import context
from bot.discord_app.attachments import Downloads, after_download
from bot.discord_app.choices import ModelChoices
from bot.discord_app.inflight import AnswersInFlight, JournaledSink
from bot.discord_app.notices import deliver_notices
from bot.discord_app.render import say, send_replies, stream_answer
from bot.discord_app.stream import InteractionSink, ReplySink

log = logging.getLogger(__name__)

ALLOWLIST_CHANGES = (c.ModelsAdd, c.ModelsRemove, c.ModelsDefault)


@dataclass
class Bridge:
    settings: Settings
    service: ProviderService
    dispatcher: Dispatcher
    #: The journal of answers in flight (None: answers are not journalled).
    inflight: AnswersInFlight | None = None
    models: ModelChoices = field(init=False)
    #: The connected client (set by it), for direct messages outside an interaction.
    client: discord.Client | None = field(init=False, default=None)
    #: Seconds between edits of one streaming message.
    edit_interval: float = EDIT_INTERVAL
    #: The interactions and replies streaming an answer now, drained at shutdown.
    tasks: AnswerTasks = field(init=False, default_factory=lambda: AnswerTasks("Discord"))
    #: Attachment downloads (one pooled session, closed with the client).
    downloads: Downloads = field(init=False)

    def __post_init__(self) -> None:
        self.models = ModelChoices(self.service)
        self.downloads = Downloads(self.settings.discord_api_base)

    def interaction_sink(
        self, sink: InteractionSink, interaction: discord.Interaction
    ) -> JournaledSink:
        if self.inflight is None:
            return JournaledSink(sink)
        return self.inflight.for_interaction(sink, interaction)

    def reply_sink(self, sink: ReplySink, channel_id: int) -> JournaledSink:
        if self.inflight is None:
            return JournaledSink(sink)
        return self.inflight.for_channel(sink, channel_id)

    def ctx(self, interaction: discord.Interaction) -> Invocation:
        return context.from_interaction(interaction, self.settings)

    async def refuse_unless_admin(
        self, interaction: discord.Interaction, ctx: Invocation, command: c.Command
    ) -> bool:
        """Answer a non-admin at once (ephemeral); True when refused."""
        action = permissions.admin_action(command)
        if action is None or self.service.is_admin(ctx):
            return False
        await say(
            interaction,
            f"Only server admins (Manage Server or Administrator) can {action}.",
        )
        return True

    async def run(
        self, interaction: discord.Interaction, command: c.Command, *, ephemeral: bool
    ) -> None:
        """Defer within Discord's 3 s, run the command, then edit in the result."""
        ctx = self.ctx(interaction)
        if await self.refuse_unless_admin(interaction, ctx, command):
            return
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        await send_replies(interaction, self.dispatcher.run(ctx, command), ephemeral=ephemeral)
        if isinstance(command, ALLOWLIST_CHANGES):
            self.models.invalidate(ctx.workspace_id)

    async def chat(
        self,
        interaction: discord.Interaction,
        command: c.Chat,
        files: Sequence[discord.Attachment] = (),
    ) -> None:
        """``/chat``: a public "thinking…" first, then the attached files are fetched and the
        answer streamed into it."""
        with self.tasks.track():
            ctx = self.ctx(interaction)
            deferred = await interaction.response.defer(thinking=True)
            original_id = deferred.message_id if deferred else None
            sink = self.interaction_sink(
                InteractionSink(interaction, original_id=original_id), interaction
            )
            # The response's own message is known now, so it is written with the turn, in
            # the same transaction; only the parts of a long answer need one of their own.
            anchors = [f"discord:{original_id}"] if original_id else []
            replies = after_download(
                self.downloads,
                files,
                lambda fetched: self.dispatcher.run(
                    ctx, dataclasses.replace(command, attachments=fetched), anchors=anchors
                ),
            )
            outcome = await stream_answer(
                replies,
                sink,
                interval=self.edit_interval,
                anchor=partial(self.remember, ctx, frozenset(anchors)),
            )
        # Not reached when cancelled (shutdown): then another process finishes the message.
        sink.end()
        if outcome.private_error is not None:
            await say(interaction, outcome.private_error)
        if outcome.notices:
            channel = interaction.channel
            await deliver_notices(
                interaction.client,
                outcome.notices,
                channel=channel if isinstance(channel, discord.abc.Messageable) else None,
                interaction=interaction,
            )

    async def remember(
        self,
        ctx: Invocation,
        written: frozenset[str],
        done: ChatCompleted,
        message_ids: list[int],
    ) -> None:
        """Anchor every answer message so a reply to any part continues the conversation
        (those in ``written`` went in with the turn)."""
        anchors = [f"discord:{i}" for i in message_ids if f"discord:{i}" not in written]
        if not done.conversation_id or not anchors:
            return
        try:
            await self.dispatcher.remember(ctx, done.conversation_id, anchors)
        except Exception:
            log.exception("could not anchor messages %s", message_ids)
