"""Before a chat calls the provider: everything it needs, read in one transaction, and its
admission by the budgets.

Any refusal here (access turned off, no default model, a model off the allowlist, no key, a
budget) happens before the provider is called, so it costs nothing. The channel's policy
decides the system prompt (the channel's, else the workspace's) and, for a chat without
``--model``, the model (the channel's default, else the workspace's).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from adapters.base import ChatMessage, ModelPricing
from adapters.registry import display_name
from bot.core import policies
from bot.core.allowlist import pricing_of
from bot.core.catalogue.chat import current_pricing, ensure_served, fit_context
from bot.core.catalogue.sync import PROVIDER
from bot.core.chat import richer
from bot.core.deps import Deps
from bot.core.errors import ModelNotAllowed
from bot.core.keys import Keys
from bot.core.ports import AllowedModelRow, ChatPolicy, ConversationRef, StoredKey
from bot.core.pricing import price_to_nano
from bot.core.replies import Invocation
from bot.core.spend.limits import (
    ANSWER_CEILING_TOKENS,
    Ask,
    estimate_prompt_tokens,
    tokens_cost_nano,
)

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
    #: ``max_completion_tokens`` the limits ask for (None: no limit caps this chat).
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class _Read:
    model: AllowedModelRow
    key: StoredKey | None
    history: list[ChatMessage]
    has_limits: bool | None
    policy: ChatPolicy


async def _read(
    deps: Deps,
    ctx: Invocation,
    ws_id: int,
    model: str | None,
    conversation: ConversationRef | None,
) -> _Read:
    """The policy, the model, the key, the history, and whether the workspace has any spend
    limit (one transaction); refuses a chat that access rules turn away, or whose model the
    workspace does not allow."""
    read = await deps.store.read_chat(
        ws_id,
        channel_id=ctx.channel_id,
        user_id=ctx.user_id,
        model_id=conversation.model if conversation else model,
        conversation_id=conversation.id if conversation else None,
        history_limit=HISTORY_LIMIT,
        with_limits=deps.budgets is not None,
    )
    policies.check_access(read.policy)
    if read.model_id is None:
        raise ModelNotAllowed(
            "This workspace has no default model; pick one with /chat --model <id> "
            "or ask an admin for /models default <id>."
        )
    if read.model is None:
        raise ModelNotAllowed(
            f"`{read.model_id}` is not allowed in this workspace; "
            "see /models for the ones that are."
        )
    history = [
        ChatMessage(role=r.role, content=r.content)  # type: ignore[arg-type]
        for r in read.history
        if r.role in ("system", "user", "assistant")
    ]
    return _Read(read.model, read.key, history, read.has_limits, read.policy)


def _ask(
    deps: Deps,
    model: AllowedModelRow,
    pricing: ModelPricing,
    messages: list[ChatMessage],
    plan: richer.Plan,
) -> Ask:
    """What the chat asks of its limits: its prompt's cost from its characters, its files
    and its searches, and its model's output price (None prices: the chat cannot be
    bounded)."""
    ceiling = deps.model_settings.defaults(model.provider, model.model_id).max_completion_tokens
    input_nano, output_nano = (
        price_to_nano(pricing.input_per_1m),
        price_to_nano(pricing.output_per_1m),
    )
    if input_nano is None or output_nano is None:
        return Ask(None, model=model.model_id)
    prompt = tokens_cost_nano(estimate_prompt_tokens(messages), input_nano)
    prompt += plan.prompt_nano(pricing)
    return Ask(prompt, output_nano, ceiling or ANSWER_CEILING_TOKENS, model.model_id)


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
    read = await _read(deps, ctx, workspace_id, model, conversation)
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
    system = policies.system_prompt(read.policy)
    fit = fit_context(
        catalogue,
        model_id,
        [
            *([ChatMessage(role="system", content=system)] if system else []),
            *read.history,
            plan.user_message(prompt),
        ],
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
            has_limits=read.has_limits,
            user_id=ctx.user_id,
            ask=_ask(deps, read.model, pricing, messages, plan),
        )
    max_tokens = reservation.max_tokens if reservation is not None else None
    return PreparedChat(
        workspace_id,
        read.model,
        pricing,
        key,
        messages,
        reservation,
        notice=fit.notice,
        extras=plan,
        max_tokens=max_tokens,
    )
