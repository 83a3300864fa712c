"""Discord answers in the journal of answers in flight (:mod:`bot.core.inflight`): what is
recorded while an answer streams, and how another Discord process finishes the message of an
answer whose process died.

A target names the message the answer was writing last (the one with the cursor; earlier parts
of a long answer are complete) and how to edit it:

* a ``/chat`` answer (``"via": "interaction"``) is edited through the interaction's webhook,
  Discord's documented way to edit an interaction response (``@original``, which also ends a
  still "thinking…" deferred response) or follow-up. That takes the interaction token, a
  credential for 15 minutes, so the target carries it only encrypted with the runtime's key
  vault (Fernet), and a target whose token has expired is dropped without a call.
* a reply-chain answer (``"via": "channel"``) is the bot's own channel message, edited with the
  bot token (``PATCH /channels/{channel}/messages/{message}``); nothing secret is stored.

The message then says ``⚠`` and :data:`~bot.core.inflight.INTERRUPTED` (the text shown so far is
not journalled). Any process may finish any orphan: Discord's REST does not care which shard
received the interaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import discord
from discord.webhook.async_ import async_context
from pydantic import SecretStr

from bot.core.inflight import INTERRUPTED, AnswerJournal
from bot.core.ports import Store, Vault
from bot.discord_app.stream import NO_MENTIONS, MessageSink

log = logging.getLogger(__name__)

#: How long an interaction token may be used (Discord: 15 minutes from the interaction).
INTERACTION_TOKEN_SECONDS = 15 * 60
#: A token this close to its expiry is not used (clocks differ, and the call takes time).
EXPIRY_MARGIN_SECONDS = 10.0

#: The journal target for an answer whose messages have these ids (None: nothing to record).
Target = Callable[[list[int]], dict[str, Any] | None]


def interaction_target(
    vault: Vault, *, application_id: int, token: str, created_at: float
) -> Target:
    """Targets for an answer in an interaction's response (message 0) and follow-ups; the
    token is encrypted once, when the answer is first recorded."""
    sealed: str | None = None

    def target(message_ids: list[int]) -> dict[str, Any]:
        nonlocal sealed
        if sealed is None:
            sealed = vault.encrypt(SecretStr(token)).decode("ascii")
        return {
            "via": "interaction",
            "app": str(application_id),
            "token": sealed,
            "expires": int(created_at) + INTERACTION_TOKEN_SECONDS,
            # None: the original response (its id may not be known yet), else a follow-up.
            "message": str(message_ids[-1]) if len(message_ids) > 1 else None,
        }

    return target


def channel_target(channel_id: int) -> Target:
    """Targets for an answer posted as the bot's own messages in ``channel_id``."""

    def target(message_ids: list[int]) -> dict[str, Any] | None:
        if not message_ids:
            return None  # its first message was never posted
        return {"via": "channel", "channel": str(channel_id), "message": str(message_ids[-1])}

    return target


class JournaledSink:
    """A :class:`~bot.discord_app.stream.MessageSink` whose answer is in the journal from its
    first message until :meth:`end`, re-recorded whenever a new part becomes the last one.

    The caller calls :meth:`end` when the answer is complete or has failed with its own
    sentence, never when it is cancelled (then another process finishes the message)."""

    def __init__(
        self,
        sink: MessageSink,
        journal: AnswerJournal | None = None,
        target: Target | None = None,
    ) -> None:
        self._sink = sink
        self._journal = journal
        self._target = target
        self._token: int | None = None
        self._recorded: dict[str, Any] | None = None
        self._ended = False

    @property
    def message_ids(self) -> list[int]:
        return self._sink.message_ids

    async def open(self) -> str | None:
        content = await self._sink.open()
        self._record()
        return content

    async def write(self, index: int, content: str) -> None:
        await self._sink.write(index, content)
        self._record()

    async def delete(self, index: int) -> None:
        await self._sink.delete(index)

    def end(self) -> None:
        self._ended = True
        if self._journal is not None and self._token is not None:
            self._journal.end(self._token)
            self._token = None

    def _record(self) -> None:
        if self._journal is None or self._target is None or self._ended:
            return
        target = self._target(self._sink.message_ids)
        if target is None or target == self._recorded:
            return
        if self._token is not None:
            self._journal.end(self._token)
        self._token = self._journal.begin(target)
        self._recorded = target


class AnswersInFlight:
    """The Discord client's journal, and how it finishes the answers of a process that died."""

    def __init__(self, store: Store, vault: Vault, *, interval: float, stale: float) -> None:
        self.vault = vault
        self.journal = AnswerJournal(
            store, platform="discord", finish=self.finish, interval=interval, stale=stale
        )
        self._client: discord.Client | None = None

    def start(self, client: discord.Client) -> None:
        """Start journalling and sweeping; ``client`` (logged in) makes the edits."""
        self._client = client
        self.journal.start()

    async def aclose(self) -> None:
        """After the client's answers ended or were cancelled; the cancelled ones stay."""
        await self.journal.aclose()

    def for_interaction(self, sink: MessageSink, interaction: discord.Interaction) -> JournaledSink:
        target = interaction_target(
            self.vault,
            application_id=interaction.application_id,
            token=interaction.token,
            created_at=interaction.created_at.timestamp(),
        )
        return JournaledSink(sink, self.journal, target)

    def for_channel(self, sink: MessageSink, channel_id: int) -> JournaledSink:
        return JournaledSink(sink, self.journal, channel_target(channel_id))

    async def finish(self, target: dict[str, Any]) -> None:
        """Say that another process's answer was cut short, in the message it was writing."""
        client = self._client
        if client is None:
            raise RuntimeError("the Discord answer journal sweeps only once started")
        text = f"⚠ {INTERRUPTED}"
        via = target.get("via")
        if via == "channel":
            channel = client.get_partial_messageable(int(target["channel"]))
            message = channel.get_partial_message(int(target["message"]))
            await message.edit(content=text, allowed_mentions=NO_MENTIONS)
        elif via == "interaction":
            if time.time() >= float(target["expires"]) - EXPIRY_MARGIN_SECONDS:
                log.info(
                    "an interrupted answer's interaction token has expired (after 15 minutes); "
                    "its message cannot be edited and stays as it was"
                )
                return
            application_id = int(target["app"])
            token = self.vault.decrypt(str(target["token"]).encode("ascii")).get_secret_value()
            webhook = discord.Webhook.partial(application_id, token, client=client)
            if target.get("message") is None:
                await async_context.get().edit_original_interaction_response(
                    application_id,
                    token,
                    session=webhook.session,
                    payload={"content": text, "allowed_mentions": NO_MENTIONS.to_dict()},
                )
            else:
                await webhook.edit_message(
                    int(target["message"]), content=text, allowed_mentions=NO_MENTIONS
                )
        else:
            log.warning("an interrupted Discord answer of an unknown kind was left as it is")
