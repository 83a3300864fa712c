"""Before a chat calls the provider: everything it needs, read in one transaction, and its
admission by the budgets.

Any refusal here (no default model, a model off the allowlist, no key, a budget) happens before
the provider is called, so it costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from adapters.base import ChatMessage, ModelPricing
from adapters.registry import display_name
from bot.core.allowlist import pricing_of
from bot.core.catalogue_sync import PROVIDER
from bot.core.chat import richer
from bot.core.chat_catalogue import current_pricing, ensure_served, fit_context
from bot.core.deps import Deps
from bot.core.errors import ModelNotAllowed
from bot.core.keys import Keys
from bot.core.ports import AllowedModelRow, ConversationRef, StoredKey, UnitOfWork
from bot.core.replies import Invocation
from bot.core.spend.guard import estimate_nano

#: Messages of a conversation's history sent with a follow-up.
HISTORY_LIMIT = 50


@dataclass(frozen=True, slots=True)
class PreparedChat:
    """A chat admitted and ready to send."""

    workspace_id: int
    model: AllowedModelRow
    pricing: ModelPricing
    key: SecretStr
    messages: list[ChatMessage]
    #: The budget hold to settle once the chat is recorded (None: no limit applies).
    reservation: object | None
    #: Shown with the answer: earlier turns were left out to fit the model's context.
    notice: str | None = None
    #: Files, web search and reasoning effort going with this chat.
    extras: richer.Plan = richer.NO_EXTRAS


@dataclass(frozen=True, slots=True)
class _Read:
    model: AllowedModelRow
    key: StoredKey | None
    history: list[ChatMessage]
    has_limits: bool | None


async def _allowed(tx: UnitOfWork, ws_id: int, model: str | None) -> AllowedModelRow:
    if model is None:
        ws = await tx.workspaces.get(ws_id)
        model = ws.default_model if ws else None
        if model is None:
            raise ModelNotAllowed(
                "This workspace has no default model; pick one with /chat --model <id> "
                "or ask an admin for /models default <id>."
            )
    row = await tx.allowlist.get(ws_id, model)
    if row is None:
        raise ModelNotAllowed(
            f"`{model}` is not allowed in this workspace; see /models for the ones that are."
        )
    return row


async def _read(
    deps: Deps, ws_id: int, model: str | None, conversation: ConversationRef | None
) -> _Read:
    """The model, the key, the history, and whether the workspace has any spend limit."""
    async with deps.store.transaction() as tx:
        allowed = await _allowed(tx, ws_id, conversation.model if conversation else model)
        key = await tx.keys.get(ws_id, allowed.provider)
        history: list[ChatMessage] = []
        if conversation is not None:
            rows = await tx.conversations.history(ws_id, conversation.id, limit=HISTORY_LIMIT)
            history = [
                ChatMessage(role=r.role, content=r.content)  # type: ignore[arg-type]
                for r in rows
                if r.role in ("system", "user", "assistant")
            ]
        has_limits = await tx.budgets.has_any(ws_id) if deps.budgets is not None else None
    return _Read(allowed, key, history, has_limits)


async def prepare(
    deps: Deps,
    keys: Keys,
    *,
    ctx: Invocation,
    workspace_id: int,
    prompt: str,
    model: str | None,
    conversation: ConversationRef | None,
    extras: richer.ChatExtras | None = None,
) -> PreparedChat:
    """Read, resolve the key and hold the budget; raises a UserFacingError (or a provider
    error) that refuses the chat before anything is sent."""
    read = await _read(deps, workspace_id, model, conversation)
    provider = read.model.provider
    model_id = read.model.model_id
    catalogue = deps.catalogue if provider == PROVIDER else None
    ensure_served(catalogue, read.model, display_name(provider))  # retired: one sentence
    deps.adapter(provider)  # an unconfigured provider refuses before any hold
    key = keys.usable(read.key, provider)
    assert key is not None
    # Computed costs use today's list price where the catalogue has one.
    pricing = current_pricing(catalogue, model_id, pricing_of(read.model))
    if pricing.input_per_1m is None:
        pricing = deps.model_settings.price(provider, model_id) or pricing
    # Files, web search, effort: refused here (before any hold) where the model cannot.
    plan = await richer.plan(deps, workspace_id=workspace_id, model=read.model, extras=extras)
    pricing = plan.pricing(pricing)
    fit = fit_context(
        catalogue,
        model_id,
        [*read.history, plan.user_message(prompt)],
        max_completion_tokens=deps.model_settings.defaults(
            provider, model_id
        ).max_completion_tokens,
        extra_tokens=plan.prompt_tokens,
    )
    messages = fit.messages
    reservation = None
    if deps.budgets is not None:
        reservation = await deps.budgets.reserve(
            workspace_id=workspace_id,
            channel_id=ctx.channel_id,
            estimate_nano=estimate_nano(messages, pricing) + plan.estimate_nano(pricing),
            has_limits=read.has_limits,
        )
    return PreparedChat(
        workspace_id,
        read.model,
        pricing,
        key,
        messages,
        reservation,
        notice=fit.notice,
        extras=plan,
    )
