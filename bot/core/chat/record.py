"""A chat on the ledger: its turn in the conversation and its usage row, in one transaction,
written exactly once however often the database makes us try.

The answer has been paid for by the time it is recorded, so a database that is briefly
unreachable (a restart, a failover) must not lose its row: the transaction is tried again for
up to ``WRITE_RETRY_SECONDS``. A retry after a commit whose acknowledgement was lost would
write the row twice, so a retry first looks for the generation's row.

The same transaction releases the chat's row in flight (``bot.core.chat.flights``), only if
this process still holds it: a chat whose lease lapsed (the database was out of reach longer
than a lease) may have been settled by another process, and is then not written twice. A chat
whose cost is unknown (cancelled, no usage came) but whose generation is known goes back in
flight, its lease lapsed, for a sweep to settle from the provider's record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import stamina

from adapters.base import StreamFailed, StreamFinished, Usage
from bot.core.chat.flights import Flight
from bot.core.deps import Deps
from bot.core.ports import AllowedModelRow, ConversationRef, TurnWrite, UsageEntry
from bot.core.pricing import ChatCost
from bot.core.replies import Invocation
from bot.core.spend.guard import Crossing

log = logging.getLogger(__name__)

#: How long a write that must not be lost keeps retrying a database that is briefly
#: unreachable: longer than a PostgreSQL restart or a managed failover's switch.
WRITE_RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Turn:
    """What a chat knows once it is under way: who asked what, of which model."""

    ctx: Invocation
    workspace_id: int
    model: AllowedModelRow
    prompt: str
    conversation: ConversationRef | None
    #: ``time.monotonic()`` when the chat began.
    started: float
    reservation: object | None
    #: Platform messages continuing the conversation (the front-end may still add to them).
    anchors: Sequence[str]
    #: The chat as this process's lease (see ``bot.core.chat.flights``).
    flight: Flight


@dataclass(frozen=True, slots=True)
class Ending:
    """How a chat ended: its answer and outcome, and what it cost."""

    answer: str
    outcome: str
    cost: ChatCost
    usage: Usage | None = None
    model_served: str | None = None
    generation_id: str | None = None
    error_kind: str | None = None

    @classmethod
    def of(
        cls, final: StreamFinished | StreamFailed, answer: str, outcome: str, cost: ChatCost
    ) -> Ending:
        return cls(
            answer,
            outcome,
            cost,
            usage=final.usage,
            model_served=final.model_served,
            generation_id=final.generation_id,
            error_kind=final.error.kind if isinstance(final, StreamFailed) else None,
        )


async def record(deps: Deps, turn: Turn, ending: Ending) -> tuple[int, Sequence[Crossing]]:
    """Write the turn and its usage row; release the budget hold. Returns the conversation id
    and the limits this chat took to 80 % or 100 % (for the notices)."""
    latency_ms = int((time.monotonic() - turn.started) * 1000)
    conversation_id: int | None = None
    flight = turn.flight
    try:
        row_id = await flight.log.settled(flight)
        write = _write(deps, turn, ending, latency_ms=latency_ms, flight_row=row_id)
        async for attempt in stamina.retry_context(
            on=deps.store.is_transient,
            attempts=None,
            timeout=WRITE_RETRY_SECONDS,
            wait_initial=0.2,
            wait_max=2.0,
        ):
            with attempt:
                if attempt.num > 1:
                    log.warning("retrying the usage record of a chat (attempt %d)", attempt.num)
                # A retry first looks for the generation's row (a lost acknowledgement).
                written = await deps.store.write_turn(
                    replace(write, check_generation=attempt.num > 1)
                )
        conversation_id = written.conversation_id
        if not written.owned:
            log.warning("a chat's lease had lapsed: another process put it on the ledger")
    finally:
        # Recorded, or not at all: then its row in flight, if written, lapses and is settled.
        flight.log.end(flight)
    notices: Sequence[Crossing] = ()
    if deps.budgets is not None and turn.reservation is not None:
        try:
            notices = await deps.budgets.settle(turn.reservation, cost_nano=ending.cost.nano)
        except Exception:
            # The usage row is written and counts against the limits; the hold itself
            # lapses at its expiry. The user still gets the answer.
            log.warning("could not release a budget reservation", exc_info=True)
    return conversation_id or 0, notices


def _write(
    deps: Deps,
    turn: Turn,
    ending: Ending,
    *,
    latency_ms: int,
    flight_row: int | None,
) -> TurnWrite:
    """The chat's one write: its turn (unless it failed) and its usage row."""
    ctx, ws_id, model = turn.ctx, turn.workspace_id, turn.model
    # A cancelled chat has no final event: the generation is the one the provider accepted.
    generation_id = ending.generation_id or turn.flight.generation_id
    messages: tuple[tuple[str, str], ...] = ()
    if ending.outcome != "error":
        messages = (("user", turn.prompt),)
        if ending.answer:
            messages += (("assistant", ending.answer),)
    settle = None
    if ending.cost.nano is None and ending.outcome != "error" and generation_id is not None:
        # The provider knows what it billed: a sweep asks it (see bot.core.chat.settle).
        turn.flight.generation_id = generation_id
        settle = turn.flight.entry(lease_until=deps.clock())
    usage = ending.usage
    return TurnWrite(
        conversation_id=turn.conversation.id if turn.conversation is not None else None,
        channel_id=ctx.channel_id,
        user_id=ctx.user_id,
        provider=model.provider,
        model=model.model_id,
        messages=messages,
        anchors=tuple(turn.anchors),
        usage=UsageEntry(
            workspace_id=ws_id,
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            provider=model.provider,
            model_requested=model.model_id,
            model_served=ending.model_served,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            web_search_requests=usage.web_search_requests if usage else 0,
            web_search_cost_nano=ending.cost.search_nano,
            cost_nano=ending.cost.nano,
            cost_source=ending.cost.source,
            generation_id=generation_id,
            latency_ms=latency_ms,
            outcome=ending.outcome,
            error_kind=ending.error_kind,
            conversation_id=None,
            created_at=deps.clock(),
        ),
        flight_row=flight_row,
        owner=deps.owner,
        settle=settle,
    )
