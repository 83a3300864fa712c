"""A chat turn from the caller's side: prepare it, stream the provider's answer as replies,
record it, and end with the footer.

``Chats.chat`` yields ``ChatStarted``, ``ChatDelta``…, then ``ChatCompleted``; or one
``ChatFailed`` when it fails before any text (nothing is charged then). However the stream ends
(the provider fails, the consumer goes away), the chat is on the ledger; and from the moment
the provider accepts it, it is on record as this process's chat in flight, so that it is
settled even if this process dies (``bot.core.chat.flights``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from decimal import Decimal

from adapters.base import ChatRequest, StreamAccepted, StreamFailed, StreamFinished, TextDelta
from adapters.errors import ProviderError
from bot.core.chat.flights import FlightLog
from bot.core.chat.prepare import PreparedChat, prepare
from bot.core.chat.record import Ending, Turn, record
from bot.core.deps import Deps
from bot.core.errors import UserFacingError
from bot.core.format import format_footer
from bot.core.keys import Keys
from bot.core.messages import cut_off_notice, provider_sentence
from bot.core.ports import ConversationRef
from bot.core.pricing import ChatCost, settle_cost
from bot.core.replies import ChatCompleted, ChatDelta, ChatFailed, ChatStarted, Invocation, Reply
from bot.core.spend.guard import Reservation, estimate_prompt_tokens
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
    ) -> AsyncGenerator[Reply, None]:
        """Run one chat turn.

        ``anchors``: the platform messages whose replies continue this conversation. The
        front-end may still add to the sequence (a list) while the answer streams, e.g. the
        message it posted on ``ChatStarted``; they are written with the turn, in the same
        transaction, once the answer is complete.
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
            )
        except UserFacingError as exc:
            yield ChatFailed(exc.message)
            return
        except ProviderError as exc:
            yield ChatFailed(provider_sentence(exc))
            return
        flight = self.flights.begin(
            workspace_id=ws_id,
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            provider=ready.model.provider,
            model=ready.model.model_id,
            prompt_tokens=estimate_prompt_tokens(ready.messages),
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
            prompt,
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
            max_completion_tokens=defaults.max_completion_tokens,
            user=end_user(ctx),
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
            yield ChatFailed(f"{provider_sentence(final.error)} Nothing was charged.")
            return
        yield await self._complete(ready, turn, final, "".join(parts))

    async def _complete(
        self, ready: PreparedChat, turn: Turn, final: StreamFinished | StreamFailed, text: str
    ) -> ChatCompleted:
        seconds = time.monotonic() - turn.started
        usage = final.usage
        cost = settle_cost(usage, ready.pricing)
        cut_off = isinstance(final, StreamFailed)
        ending = Ending.of(final, text, "cut_off" if cut_off else "ok", cost)
        conversation_id, budget_notices = await record(self.deps, turn, ending)
        shown_model = final.model_served or ready.model.model_id
        footer = format_footer(
            model=shown_model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else 0,
            cost=cost,
            seconds=seconds,
        )
        notices = [cut_off_notice(final.error)] if isinstance(final, StreamFailed) else []
        notices.extend(budget_notices)
        return ChatCompleted(
            text=text,
            footer=footer,
            model=shown_model,
            conversation_id=conversation_id,
            cost=cost,
            cut_off=cut_off,
            notices=tuple(notices),
        )
