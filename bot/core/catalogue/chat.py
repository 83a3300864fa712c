"""What a chat takes from the catalogue: whether its model is still served, today's price, how
much of the conversation fits the model's context, and the sentence for a refusal that the
catalogue explains (a retired model, a 403 of one kind or another, a prompt too long).

Nothing here waits for the provider: a chat reads the process's cached catalogue only
(:meth:`bot.core.catalogue.Catalogue.status`), so a slow or unreachable catalogue never slows
a chat down. ProviderService calls these functions in a line or two each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from adapters.base import ChatMessage, ModelPricing
from adapters.error_facts import (
    context_limit,
    forbidden_reason,
    is_context_overflow,
    is_retired_model,
)
from adapters.errors import ModelNotFoundError, ProviderError
from bot.core.catalogue import Catalogue, texts
from bot.core.errors import UserFacingError
from bot.core.ports import AllowedModelRow, Store

__all__ = [
    "ANSWER_RESERVE",
    "CHARS_PER_TOKEN",
    "Fit",
    "ModelRetired",
    "current_pricing",
    "ensure_served",
    "estimate_tokens",
    "failure_sentence",
    "fit_context",
]

log = logging.getLogger(__name__)

#: Characters per token when estimating a prompt: low on purpose (code and most languages
#: other than English take more tokens per character), so a trimmed request fits.
CHARS_PER_TOKEN = 3
#: Tokens a message costs beyond its text (role, separators).
MESSAGE_OVERHEAD = 4
#: Tokens kept free for the answer when the model's defaults set no limit: a quarter of the
#: context, at most this many.
ANSWER_RESERVE = 8192


class ModelRetired(UserFacingError):
    """The chat's model is no longer served; nothing was sent."""


def ensure_served(catalogue: Catalogue | None, row: AllowedModelRow, provider: str) -> None:
    """Raise :class:`ModelRetired` when the allowlist or this process's catalogue knows the
    model is no longer served (marked by a sync or a refused chat, left the list, expired)."""
    status = catalogue.status(row.model_id) if catalogue is not None else None
    expired = status is not None and status.availability == "expired"
    left = catalogue is not None and catalogue.known_gone(row.model_id)
    if row.unavailable_reason is None and not expired and not left:
        return
    entry = status.entry if status is not None else None
    expired_on = entry.expiration_date if entry is not None and expired else None
    raise ModelRetired(texts.no_longer_available(row.model_id, provider, expired_on=expired_on))


def current_pricing(
    catalogue: Catalogue | None, model_id: str, stored: ModelPricing
) -> ModelPricing:
    """Today's list price where the catalogue has one (computed costs use it), else stored."""
    current = catalogue.pricing(model_id) if catalogue is not None else None
    if current is None:
        return stored
    cached = current.cached_input_per_1m
    return ModelPricing(
        current.input_per_1m,
        current.output_per_1m if current.output_per_1m is not None else stored.output_per_1m,
        cached if cached is not None else stored.cached_input_per_1m,
    )


def estimate_tokens(message: ChatMessage) -> int:
    return len(message.content) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD


@dataclass(frozen=True, slots=True)
class Fit:
    messages: list[ChatMessage]
    #: The line to show with the answer when earlier turns were left out, the first time.
    notice: str | None = None


def _trim(messages: Sequence[ChatMessage], budget: int) -> tuple[list[ChatMessage], int]:
    """Leave out the oldest turns until the estimate fits ``budget``: leading system messages
    and the newest message always stay. Returns the messages and how many were left out."""
    head = 0
    while head < len(messages) - 1 and messages[head].role == "system":
        head += 1
    system, middle, newest = list(messages[:head]), list(messages[head:-1]), messages[-1:]
    total = sum(estimate_tokens(m) for m in messages)
    dropped = 0
    while middle and (total > budget or (middle[0].role == "assistant" and dropped)):
        # An answer whose question was left out goes with it.
        total -= estimate_tokens(middle.pop(0))
        dropped += 1
    return [*system, *middle, *newest], dropped


def fit_context(
    catalogue: Catalogue | None,
    model_id: str,
    messages: Sequence[ChatMessage],
    *,
    max_completion_tokens: int | None = None,
    extra_tokens: int = 0,
) -> Fit:
    """The conversation as it fits the model's context (from the catalogue), room left for
    the answer and ``extra_tokens`` (attached images and files, search results) beyond the
    messages' text. Unknown context length: everything goes, and the provider decides."""
    entry = catalogue.entry(model_id) if catalogue is not None else None
    context = entry.context_length if entry is not None else None
    if not context or len(messages) < 2:
        return Fit(list(messages))
    reserve = (max_completion_tokens or min(context // 4, ANSWER_RESERVE)) + extra_tokens
    budget = max(context - reserve, 1)
    kept, dropped = _trim(messages, budget)
    if not dropped:
        return Fit(kept)
    # Say so once: not when the previous request (the history up to the last answer, whose
    # newest message was then the question) had to leave turns out already.
    previous = list(messages[:-1])
    if previous and previous[-1].role == "assistant":
        previous = previous[:-1]
    told_before = len(previous) >= 2 and _trim(previous, budget)[1] > 0
    return Fit(kept, None if told_before else texts.turns_left_out(model_id, context))


async def failure_sentence(
    catalogue: Catalogue | None,
    store: Store,
    *,
    workspace_id: int,
    model_id: str,
    error: ProviderError,
    provider: str,
    now: datetime,
) -> str | None:
    """The sentence for a chat the provider refused before any text, where the catalogue
    explains it (``None``: the error's own). A model answered 404 "No endpoints found" (or
    any 404 for a model the catalogue no longer lists) is marked no longer available."""
    if isinstance(error, ModelNotFoundError):
        # A 404 for a model the cached list no longer shows (an alias it omits proves nothing).
        gone = catalogue is not None and catalogue.status(model_id).availability == "gone"
        if is_retired_model(error) or gone:
            if catalogue is not None:
                catalogue.mark_refused(model_id)
            try:
                async with store.transaction() as tx:
                    await tx.allowlist.mark_unavailable(
                        workspace_id, model_id, reason="refused", now=now
                    )
            except Exception:
                log.warning("could not mark %s unavailable", model_id, exc_info=True)
            return texts.no_longer_available(model_id, provider)
        return None
    reason = forbidden_reason(error)
    if reason is not None:
        return texts.forbidden(reason, provider)
    if is_context_overflow(error):
        entry = catalogue.entry(model_id) if catalogue is not None else None
        limit = context_limit(error) or (entry.context_length if entry is not None else None)
        return texts.context_overflow(model_id, limit)
    return None
