"""A chat turn from the caller's side: prepare it, stream the provider's answer as replies,
record it, and end with the footer.

``Chats.chat`` yields ``ChatStarted``, ``ChatDelta``…, any budget ``Notice`` s for other
audiences, then ``ChatCompleted`` (always last, so front-ends deliver the notices once the
answer is shown); or one ``ChatFailed`` when it fails before any text (nothing is charged).
However the stream ends (the provider fails, the consumer goes away), the chat is on the
ledger; and from the moment the provider accepts it, it is on record as this process's chat
in flight, so that it is settled even if this process dies (``bot.core.chat.flights``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from decimal import Decimal

from adapters.base import (
    ChatRequest,
    StreamAccepted,
    StreamFailed,
    StreamFinished,
    TextDelta,
    Usage,
)
from adapters.error_facts import unsupported_feature
from adapters.errors import ProviderError
from adapters.registry import display_name
from bot.core.catalogue.chat import failure_sentence
from bot.core.catalogue.sync import PROVIDER
from bot.core.chat.flights import FlightLog
from bot.core.chat.prepare import PreparedChat, prepare
from bot.core.chat.record import Ending, Turn, record
from bot.core.chat.richer import ChatExtras, cannot_at_provider
from bot.core.chat.sources import sources_of
from bot.core.deps import Deps
from bot.core.errors import UserFacingError
from bot.core.format import format_footer
from bot.core.keys import Keys
from bot.core.messages import cut_off_notice, provider_sentence
from bot.core.ports import ConversationRef
from bot.core.pricing import ChatCost, settle_cost
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    Invocation,
    Notice,
    Reply,
)
from bot.core.spend.guard import Reservation
from bot.core.spend.limits import estimate_prompt_tokens
from bot.core.spend.notices import capped_notice, notice_replies
from bot.core.workspaces import Workspaces

log = logging.getLogger(__name__)


def end_user(ctx: Invocation) -> str:
    """A stable, non-identifying id of the asker, for the provider's abuse tracking."""
    raw = f"{ctx.platform}:{ctx.workspace_id}:{ctx.user_id}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


class Chats:
    def __init__(self, deps: Deps, workspaces: Workspaces, keys: Keys, flights: FlightLog) -> None:
        self.deps = deps
        self.workspaces = workspaces
        self.keys = keys
        self.flights = flights

    # -- conversations ------------------------------------------------------------------------

    async def find_conversation(self, ctx: Invocation, anchor: str) -> ConversationRef | None:
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            return await tx.conversations.by_anchor(ws_id, anchor)

    async def conversation(self, ctx: Invocation, conversation_id: int) -> ConversationRef | None:
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            return await tx.conversations.get(ws_id, conversation_id)

    async def attach_anchors(
        self, ctx: Invocation, conversation_id: int, anchors: Sequence[str]
    ) -> None:
        """Remember that replies to these platform messages continue the conversation."""
        ws_id = await self.workspaces.id_of(ctx)
        async with self.deps.store.transaction() as tx:
            for anchor in anchors:
                await tx.conversations.add_anchor(ws_id, anchor, conversation_id)

    # -- one turn -----------------------------------------------------------------------------

    async def chat(
        self,
        ctx: Invocation,
        prompt: str,
        model: str | None = None,
        *,
        conversation: ConversationRef | None = None,
        anchors: Sequence[str] = (),
        extras: ChatExtras | None = None,
    ) -> AsyncGenerator[Reply, None]:
        """Run one chat turn.

        ``anchors``: the platform messages whose replies continue this conversation. The
        front-end may still add to the sequence (a list) while the answer streams, e.g. the
        message it posted on ``ChatStarted``; they are written with the turn, in the same
        transaction, once the answer is complete. ``extras``: attached files, web search,
        reasoning effort (see :mod:`bot.core.chat.richer`).
        """
        started = time.monotonic()
        try:
            ws_id = await self.workspaces.id_of(ctx)
            ready = await prepare(
                self.deps,
                self.keys,
                ctx=ctx,
                workspace_id=ws_id,
                prompt=prompt,
                model=model,
                conversation=conversation,
                extras=extras,
            )
        except UserFacingError as exc:
            yield ChatFailed(exc.message)
            return
        except ProviderError as exc:
            yield ChatFailed(provider_sentence(exc))
            return
        # The history keeps a reference to each attached file, never its bytes.
        stored = ready.extras.stored_prompt(prompt)
        flight = self.flights.begin(
            workspace_id=ws_id,
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            provider=ready.model.provider,
            model=ready.model.model_id,
            prompt_tokens=estimate_prompt_tokens(ready.messages) + ready.extras.prompt_tokens,
            hold_id=(
                ready.reservation.reservation_id
                if isinstance(ready.reservation, Reservation)
                else None
            ),
        )
        turn = Turn(
            ctx,
            ws_id,
            ready.model,
            stored,
            conversation,
            started,
            ready.reservation,
            anchors,
            flight,
        )
        try:
            async with aclosing(self._stream(ready, turn)) as stream:
                async for reply in stream:
                    yield reply
        finally:
            self.flights.end(flight)  # recording ends it; this covers a failure before

    def _request(self, ready: PreparedChat, ctx: Invocation) -> ChatRequest:
        defaults = self.deps.model_settings.defaults(ready.model.provider, ready.model.model_id)
        return ChatRequest(
            model=ready.model.model_id,
            messages=ready.messages,
            api_key=ready.key,
            temperature=defaults.temperature,
            # A limit's cap is at most the model's own (see bot.core.spend.limits).
            max_completion_tokens=ready.max_tokens or defaults.max_completion_tokens,
            user=end_user(ctx),
            web_search=ready.extras.web_search,
            reasoning_effort=ready.extras.effort,
            announce_acceptance=True,
        )

    async def _stream(self, ready: PreparedChat, turn: Turn) -> AsyncGenerator[Reply, None]:
        adapter = self.deps.adapter(ready.model.provider)
        request = self._request(ready, turn.ctx)
        yield ChatStarted(model=ready.model.model_id)
        parts: list[str] = []
        final: StreamFinished | StreamFailed | None = None
        try:
            async with aclosing(adapter.stream_chat(request)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                        turn.flight.chars += len(event.text)
                        yield ChatDelta(event.text)
                    elif isinstance(event, StreamAccepted):
                        self.flights.accept(turn.flight, event.generation_id)
                    else:
                        final = event
        finally:
            if final is None:
                # The consumer went away (cancelled, or the platform failed): keep the ledger
                # honest. Some providers still bill a closed stream, so the cost is unknown.
                try:
                    ending = Ending("".join(parts), "cancelled", ChatCost(None, "unknown"))
                    await record(self.deps, turn, ending)
                except Exception:
                    log.exception("could not record a cancelled chat")
        assert final is not None
        if isinstance(final, StreamFailed) and not final.partial:
            await record(
                self.deps, turn, Ending.of(final, "", "error", ChatCost(Decimal(0), "none"))
            )
            yield ChatFailed(f"{await self._refusal(ready, final)} Nothing was charged.")
            return
        completed, notices = await self._complete(ready, turn, final, "".join(parts))
        for notice in notices:
            yield notice
        yield completed

    async def _refusal(self, ready: PreparedChat, final: StreamFailed) -> str:
        """The sentence for a chat the provider refused before any text: the catalogue's
        where it explains the refusal (a retired model, a 403 kind, a prompt too long)."""
        provider = ready.model.provider
        unsupported = unsupported_feature(final.error)
        if unsupported is not None:
            return cannot_at_provider(ready.model.model_id, unsupported)
        sentence = await failure_sentence(
            self.deps.catalogue if provider == PROVIDER else None,
            self.deps.store,
            workspace_id=ready.workspace_id,
            model_id=ready.model.model_id,
            error=final.error,
            provider=display_name(provider),
            now=self.deps.clock(),
        )
        return sentence or provider_sentence(final.error)

    async def _complete(
        self, ready: PreparedChat, turn: Turn, final: StreamFinished | StreamFailed, text: str
    ) -> tuple[ChatCompleted, list[Notice]]:
        seconds = time.monotonic() - turn.started
        usage = final.usage
        cost = settle_cost(usage, ready.pricing)
        cut_off = isinstance(final, StreamFailed)
        ending = Ending.of(final, text, "cut_off" if cut_off else "ok", cost)
        # Shielded: a chat stopped (or shut down) while its paid answer is being written must
        # still leave its row; the cancellation reaches the caller once the write is done. The
        # shield's task starts a turn later, so the chat's row in flight is dropped now.
        turn.flight.log.closing(turn.flight)
        conversation_id, crossings = await asyncio.shield(record(self.deps, turn, ending))
        shown_model = final.model_served or ready.model.model_id
        footer = format_footer(
            model=shown_model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else 0,
            cost=cost,
            seconds=seconds,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            searches=_searches(ready, usage),
        )
        notices = [ready.notice] if ready.notice else []
        if isinstance(final, StreamFailed):
            notices.append(cut_off_notice(final.error))
        held = ready.reservation
        capped = held.capped_by if isinstance(held, Reservation) else None
        if capped is not None and ready.max_tokens and _stopped_at_cap(final):
            notices.append(capped_notice(capped, ready.max_tokens))
        inline, separate = notice_replies(crossings, turn.ctx)
        notices.extend(inline)
        completed = ChatCompleted(
            text=text,
            footer=footer,
            model=shown_model,
            conversation_id=conversation_id,
            cost=cost,
            cut_off=cut_off,
            notices=tuple(notices),
            sources=sources_of(final.citations),
        )
        return completed, separate


def _stopped_at_cap(final: StreamFinished | StreamFailed) -> bool:
    """The provider ended the answer at ``max_completion_tokens``."""
    return isinstance(final, StreamFinished) and final.finish_reason == "length"


def _searches(ready: PreparedChat, usage: Usage | None) -> int | None:
    """The searches to show in the footer: any that ran, and 0 for a chat that could search."""
    ran = usage.web_search_requests if usage is not None else 0
    return ran if ran or ready.extras.web_search is not None else None
