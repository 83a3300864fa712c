"""Settling chats whose cost the ledger does not have: those of processes that died mid-answer
(their lease lapsed) and those recorded with an unknown cost (cancelled, no usage came).

A sweep claims such rows (``FlightRepo.claim``: each goes to exactly one process) and settles
each in one transaction with the release of its row, which only its claimant can release:

* the provider's record first: ``GET /generation`` (the adapter polls its short 404 window);
  found, the chat costs what the provider billed (source ``reconciled``), with its tokens;
* no record there (not found, no generation id, a provider without one): an estimate from
  what is known, the prompt's estimated tokens and the text streamed, at the model's current
  prices (source ``estimated``, shown with ≈ like computed costs; ``unknown`` without prices);
* the provider could not be asked (down, refusing the key): asked again at a later sweep, and
  estimated once the chat is older than :data:`GIVE_UP_AFTER`.

A dead process's chat becomes a usage row of outcome ``interrupted``; a chat already on the
ledger has its row's cost corrected.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from adapters.base import GenerationInfo, ModelPricing, Usage
from adapters.errors import ProviderError
from bot.core.allowlist import pricing_of
from bot.core.chat.flights import FlightLog
from bot.core.deps import Deps
from bot.core.errors import UserFacingError
from bot.core.keys import Keys
from bot.core.ports import FlightRow, UnitOfWork, UsageEntry, UsageTokens
from bot.core.pricing import ChatCost, compute_cost, usd_to_nano

log = logging.getLogger(__name__)

#: Rows claimed per sweep (the rest wait for the next one).
SWEEP_LIMIT = 20
#: A chat the provider could not be asked about is estimated once it is this old.
GIVE_UP_AFTER = timedelta(hours=1)
#: When a chat the provider could not be asked about is tried again.
RETRY_AFTER = timedelta(minutes=1)
#: About 4 characters a token, as the budget estimates count.
CHARS_PER_TOKEN = 4
INTERRUPTED = "interrupted"


class _TakenOver(Exception):
    """Another process claimed the row meanwhile: it settles the chat, not this one."""


@dataclass(frozen=True, slots=True)
class Settled:
    """What a chat was settled at."""

    cost: ChatCost
    tokens: UsageTokens


class Settler:
    def __init__(self, deps: Deps, keys: Keys, flights: FlightLog) -> None:
        self.deps = deps
        self.keys = keys
        self.flights = flights

    async def sweep(self) -> int:
        """Claim the chats whose lease lapsed and settle them; returns how many were claimed.
        Also drops lapsed budget holds (dead processes'), which no longer count anyway."""
        now = self.deps.clock()
        async with self.deps.store.transaction() as tx:
            claimed = await tx.flights.claim(
                self.flights.owner, now=now, until=now + self.flights.lease, limit=SWEEP_LIMIT
            )
            await tx.budgets.prune_lapsed(now)
        # At once, not one after another: each may poll GET /generation for seconds, and the
        # last must be settled before the claim's lease lapses.
        await asyncio.gather(
            *(self._settle_logged(row) for row in claimed if not self.flights.is_running(row.id))
        )
        if claimed:
            log.info("settled %d chat(s) cut short or of unknown cost", len(claimed))
        return len(claimed)

    async def _settle_logged(self, row: FlightRow) -> None:
        # A row of a chat still running here was only renewed by the claim: it records itself.
        try:
            await self.settle(row)
        except Exception:
            # Its lease lapses again and a later sweep (here or elsewhere) tries again.
            log.warning("could not settle a chat in flight", exc_info=True)

    async def settle(self, row: FlightRow) -> Settled | None:
        """Settle one claimed row; None when it was left for later (or taken over)."""
        info, later = await self._lookup(row)
        if later:
            async with self.deps.store.transaction() as tx:
                await tx.flights.postpone(row.id, row.owner, self.deps.clock() + RETRY_AFTER)
            return None
        try:
            async with self.deps.store.transaction() as tx:
                settled = _from_provider(info) or await self._estimate(tx, row)
                await self._write(tx, row, settled)
                if not await tx.flights.release(row.id, row.owner):
                    raise _TakenOver
        except _TakenOver:
            return None
        return settled

    async def _lookup(self, row: FlightRow) -> tuple[GenerationInfo | None, bool]:
        """The provider's record of the chat, and whether to ask again later instead."""
        adapter = self.deps.adapters.get(row.provider)
        if row.generation_id is None or adapter is None:
            return None, False
        try:
            key = await self.keys.resolve(row.workspace_id, row.provider, required=False)
        except UserFacingError:  # the stored key cannot be decrypted any more
            return None, False
        if key is None:
            return None, False
        try:
            return await adapter.get_generation(row.generation_id, key), False
        except ProviderError as exc:
            young = self.deps.clock() - row.started_at < GIVE_UP_AFTER
            log.info("could not ask the provider about a chat (%s)", exc.kind)
            return None, young

    async def _estimate(self, tx: UnitOfWork, row: FlightRow) -> Settled:
        allowed = await tx.allowlist.get(row.workspace_id, row.model)
        pricing = pricing_of(allowed) if allowed is not None else ModelPricing()
        if pricing.input_per_1m is None:
            pricing = self.deps.model_settings.price(row.provider, row.model) or pricing
        usage = Usage(
            prompt_tokens=row.prompt_tokens,
            completion_tokens=math.ceil(row.streamed_chars / CHARS_PER_TOKEN),
        )
        cost = compute_cost(usage, pricing)
        return Settled(
            ChatCost(cost, "estimated") if cost is not None else ChatCost(None, "unknown"),
            UsageTokens(usage.prompt_tokens, 0, usage.completion_tokens, None),
        )

    async def _write(self, tx: UnitOfWork, row: FlightRow, settled: Settled) -> None:
        cost, tokens = settled.cost, settled.tokens
        if row.usage_id is not None:
            # The provider's counts replace the row's; an estimate's do not.
            await tx.usage.correct_cost(
                row.workspace_id,
                row.usage_id,
                cost_nano=cost.nano,
                cost_source=cost.source,
                tokens=tokens if cost.source == "reconciled" else None,
            )
            return
        if row.generation_id is not None:
            found, _ = await tx.usage.conversation_of_generation(
                row.workspace_id, row.generation_id
            )
            if found:  # already on the ledger: nothing to add
                return
        await tx.usage.record(_interrupted(row, cost, tokens))


def _from_provider(info: GenerationInfo | None) -> Settled | None:
    if info is None or info.total_cost is None:
        return None
    prompt = info.native_tokens_prompt or info.tokens_prompt or 0
    completion = info.native_tokens_completion or info.tokens_completion or 0
    return Settled(
        ChatCost(info.total_cost, "reconciled"),
        UsageTokens(prompt, info.native_tokens_cached or 0, completion, info.model),
    )


def _interrupted(row: FlightRow, cost: ChatCost, tokens: UsageTokens) -> UsageEntry:
    """The usage row of a chat whose process died before recording it."""
    return UsageEntry(
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        user_id=row.user_id,
        provider=row.provider,
        model_requested=row.model,
        model_served=tokens.model_served,
        prompt_tokens=tokens.prompt_tokens,
        cached_tokens=tokens.cached_tokens,
        completion_tokens=tokens.completion_tokens,
        reasoning_tokens=0,
        cost_nano=None if cost.usd is None else usd_to_nano(cost.usd),
        cost_source=cost.source,
        generation_id=row.generation_id,
        latency_ms=0,  # when it died is not known
        outcome=INTERRUPTED,
        error_kind=None,
        conversation_id=None,
        created_at=row.started_at,
    )
