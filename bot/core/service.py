"""ProviderService: the platform-neutral heart of routerbot.

It owns, per workspace, the allowlist, the default model, the encrypted provider keys and the
usage ledger, and runs chats through the provider adapters. Every method takes the
:class:`~bot.core.replies.Invocation` of whoever asked; admin-only actions are checked here, on
the server side, whatever a front-end already checked.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import stamina
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import (
    ChatMessage,
    ChatRequest,
    KeyInfo,
    ModelPricing,
    ProviderAdapter,
    StreamFailed,
    StreamFinished,
    TextDelta,
    Usage,
)
from adapters.errors import AuthenticationError, ProviderError
from bot.config import Settings
from bot.core.budgets import BudgetState, budget_states
from bot.core.commands import Period
from bot.core.errors import (
    BudgetExceeded,
    ModelNotAllowed,
    NoApiKey,
    NotFound,
    PermissionDenied,
    UserFacingError,
)
from bot.core.format import format_footer
from bot.core.periods import PeriodWindow, period_window
from bot.core.pricing import (
    ChatCost,
    ModelSettings,
    RecommendedModel,
    nano_to_price,
    price_to_nano,
    settle_cost,
    usd_to_nano,
)
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    Invocation,
    Reply,
)
from bot.core.text import clean_key, looks_like_key
from storage import stores
from storage.crypto import KeyDecryptError, KeyVault, mask_key
from storage.db import WRITE_RETRY_SECONDS, Database, is_transient
from storage.models import AllowedModel, Conversation, ProviderKey, UsageRecord, utcnow
from storage.stores import NewModel, UsageSummary

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50
PROVIDER_NAMES = {"openrouter": "OpenRouter", "fireworks": "Fireworks"}


def provider_for_model(model_id: str) -> str:
    return "fireworks" if model_id.startswith("accounts/") else "openrouter"


def provider_for_key(key: str) -> str:
    return "fireworks" if key.startswith("fw_") else "openrouter"


class BudgetGuard(Protocol):
    """Spend limits (SPEC §5): reserve an estimate before a chat, settle the real cost after."""

    async def reserve(
        self,
        *,
        workspace_id: int,
        channel_id: str,
        estimate_nano: int,
        has_limits: bool | None = None,
    ) -> object:
        """Hold ``estimate_nano`` against the limits; raise BudgetExceeded when over.

        ``has_limits``: whether the workspace has any limit, when the caller has just read it
        (None: the guard looks for itself).
        """
        ...

    async def settle(self, reservation: object, *, cost_nano: int | None) -> Sequence[str]:
        """Release the hold, having recorded the real cost; return notices (80 % reached)."""
        ...


@dataclass(frozen=True, slots=True)
class KeyStatus:
    provider: str
    masked: str
    info: KeyInfo | None
    #: Why ``info`` is missing (provider unreachable), if it is.
    problem: str | None = None
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class ModelEntry:
    model_id: str
    provider: str
    pricing: ModelPricing
    is_default: bool


@dataclass(frozen=True, slots=True)
class CostReport:
    scope: str
    channel_id: str | None
    window: PeriodWindow
    summary: UsageSummary
    #: Workspace scope: this month's state of every limit (whatever the period shown).
    budgets: tuple[BudgetState, ...] = ()
    #: The moment the report was made (naive UTC): names the budgets' month.
    now: datetime | None = None


@dataclass(frozen=True, slots=True)
class BudgetOverview:
    """``/budget``: the workspace's and this channel's limits for the current month."""

    channel_id: str
    states: tuple[BudgetState, ...]
    now: datetime


def _pricing_of(row: AllowedModel) -> ModelPricing:
    return ModelPricing(
        input_per_1m=nano_to_price(row.input_nano_per_1m),
        output_per_1m=nano_to_price(row.output_nano_per_1m),
        cached_input_per_1m=nano_to_price(row.cached_input_nano_per_1m),
    )


@dataclass(frozen=True, slots=True)
class _Turn:
    """What a chat knows once it is under way: who asked what, of which model, and what the
    answer must be recorded with."""

    ctx: Invocation
    ws_id: int
    allowed: AllowedModel
    prompt: str
    conversation: Conversation | None
    #: ``time.monotonic()`` when the chat began.
    started: float
    reservation: object | None
    #: Platform messages continuing the conversation (the front-end may still add to them).
    anchors: Sequence[str]


@dataclass(frozen=True, slots=True)
class _Ending:
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
    ) -> _Ending:
        return cls(
            answer,
            outcome,
            cost,
            usage=final.usage,
            model_served=final.model_served,
            generation_id=final.generation_id,
            error_kind=final.error.kind if isinstance(final, StreamFailed) else None,
        )


class ProviderService:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        vault: KeyVault,
        adapters: Mapping[str, ProviderAdapter],
        model_settings: ModelSettings,
        budgets: BudgetGuard | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = db
        self.vault = vault
        self.adapters = adapters
        self.model_settings = model_settings
        self.budgets = budgets
        self.clock = clock
        self._workspace_ids: dict[tuple[str, str], int] = {}

    # -- workspaces and permissions ---------------------------------------------------------

    async def workspace_id(self, ctx: Invocation) -> int:
        """The internal id of the caller's workspace, created (and seeded) on first use."""
        cache_key = (ctx.platform, ctx.workspace_id)
        cached = self._workspace_ids.get(cache_key)
        if cached is not None:
            return cached
        async with self.db.session() as session:
            ws, created = await stores.get_or_create_workspace(
                session,
                platform=ctx.platform,
                external_id=ctx.workspace_id,
                name=ctx.workspace_name,
            )
            assert ws.id is not None
            if created:
                await self._seed(session, ws.id)
        self._workspace_ids[cache_key] = ws.id
        return ws.id

    async def _seed(self, session: AsyncSession, workspace_id: int) -> None:
        recommended = self.model_settings.recommended("openrouter")
        await stores.add_models_bulk(
            session,
            workspace_id=workspace_id,
            models=[
                NewModel(
                    provider=m.provider,
                    model_id=m.model_id,
                    input_nano_per_1m=price_to_nano(m.pricing.input_per_1m),
                    output_nano_per_1m=price_to_nano(m.pricing.output_per_1m),
                    cached_input_nano_per_1m=price_to_nano(m.pricing.cached_input_per_1m),
                    added_by=None,
                )
                for m in recommended
            ],
        )
        if recommended:
            await stores.set_default_model(
                session, workspace_id=workspace_id, model_id=recommended[0].model_id
            )

    def is_admin(self, ctx: Invocation) -> bool:
        return ctx.is_admin or f"{ctx.platform}:{ctx.user_id}" in self.settings.admins

    def require_admin(self, ctx: Invocation, action: str) -> None:
        if not self.is_admin(ctx):
            raise PermissionDenied(f"Only workspace admins can {action}.")

    # -- allowlist --------------------------------------------------------------------------

    async def list_models(self, ctx: Invocation) -> list[ModelEntry]:
        ws_id = await self.workspace_id(ctx)
        async with self.db.session() as session:
            ws = await stores.get_workspace_by_id(session, workspace_id=ws_id)
            rows = await stores.list_models(session, workspace_id=ws_id)
        default = ws.default_model if ws else None
        return [
            ModelEntry(r.model_id, r.provider, _pricing_of(r), r.model_id == default) for r in rows
        ]

    def recommended_models(self) -> list[RecommendedModel]:
        return self.model_settings.recommended()

    async def add_model(self, ctx: Invocation, model_id: str) -> ModelEntry:
        self.require_admin(ctx, "change the model allowlist")
        ws_id = await self.workspace_id(ctx)
        provider = provider_for_model(model_id)
        adapter = self._adapter(provider)
        key = await self._resolve_key(ws_id, provider, required=False)
        info = await adapter.lookup_model(model_id, key)
        if info is None:
            raise NotFound(
                f"{PROVIDER_NAMES.get(provider, provider)} does not know the model "
                f"`{model_id}`; check the id (e.g. on openrouter.ai/models)."
            )
        pricing = info.pricing
        if pricing.input_per_1m is None or pricing.output_per_1m is None:
            pricing = self.model_settings.price(provider, model_id) or pricing
        async with self.db.session() as session:
            await stores.add_model(
                session,
                workspace_id=ws_id,
                provider=provider,
                model_id=model_id,
                input_nano_per_1m=price_to_nano(pricing.input_per_1m),
                output_nano_per_1m=price_to_nano(pricing.output_per_1m),
                cached_input_nano_per_1m=price_to_nano(pricing.cached_input_per_1m),
                added_by=ctx.user_id,
            )
            ws = await stores.get_workspace_by_id(session, workspace_id=ws_id)
        is_default = ws is not None and ws.default_model == model_id
        return ModelEntry(model_id, provider, pricing, is_default)

    async def remove_model(self, ctx: Invocation, model_id: str) -> bool:
        """Remove ``model_id``; returns True when it was the default (now cleared)."""
        self.require_admin(ctx, "change the model allowlist")
        ws_id = await self.workspace_id(ctx)
        async with self.db.session() as session:
            ws = await stores.get_workspace_by_id(session, workspace_id=ws_id)
            was_default = ws is not None and ws.default_model == model_id
            # remove_model clears the default in the same transaction when it was this model.
            removed = await stores.remove_model(session, workspace_id=ws_id, model_id=model_id)
            if not removed:
                raise NotFound(f"`{model_id}` is not on this workspace's allowlist; see /models.")
        return was_default

    async def set_default_model(self, ctx: Invocation, model_id: str) -> None:
        self.require_admin(ctx, "change the default model")
        ws_id = await self.workspace_id(ctx)
        async with self.db.session() as session:
            if await stores.get_model(session, workspace_id=ws_id, model_id=model_id) is None:
                raise ModelNotAllowed(
                    f"`{model_id}` is not on this workspace's allowlist; add it first with "
                    f"/models add {model_id}."
                )
            await stores.set_default_model(session, workspace_id=ws_id, model_id=model_id)

    # -- keys -------------------------------------------------------------------------------

    def _adapter(self, provider: str) -> ProviderAdapter:
        adapter = self.adapters.get(provider)
        if adapter is None:
            raise UserFacingError(f"The provider `{provider}` is not configured on this server.")
        return adapter

    async def _resolve_key(
        self, workspace_id: int, provider: str, *, required: bool = True
    ) -> SecretStr | None:
        async with self.db.session() as session:
            row = await stores.get_key(session, workspace_id=workspace_id, provider=provider)
        return self._key_from_row(row, provider, required=required)

    def _key_from_row(
        self, row: ProviderKey | None, provider: str, *, required: bool = True
    ) -> SecretStr | None:
        """The stored key decrypted, else the operator's fallback key."""
        if row is not None:
            try:
                return self.vault.decrypt(row.ciphertext)
            except KeyDecryptError:
                raise UserFacingError(
                    "This workspace's stored API key cannot be decrypted with the server's "
                    "ROUTERBOT_SECRET_KEY; an admin should set it again with /apikey."
                ) from None
        fallback = self.settings.fallback_key(provider)
        if fallback is None and required:
            raise NoApiKey(
                f"No {PROVIDER_NAMES.get(provider, provider)} API key is set for this "
                "workspace; a workspace admin can set one with /apikey."
            )
        return fallback

    async def set_key(self, ctx: Invocation, key: SecretStr, provider: str | None) -> KeyStatus:
        self.require_admin(ctx, "set the API key")
        plain = clean_key(key.get_secret_value())
        if not looks_like_key(plain):  # e.g. a character no HTTP header can carry
            raise UserFacingError("That does not look like an API key; nothing was stored.")
        key = SecretStr(plain)
        provider = provider or provider_for_key(plain)
        adapter = self._adapter(provider)
        name = PROVIDER_NAMES.get(provider, provider)
        try:
            info = await adapter.check_key(key)
        except AuthenticationError:
            raise UserFacingError(f"{name} rejected that key; nothing was stored.") from None
        except ProviderError as exc:
            reason = exc.user_message.rstrip(".")
            raise UserFacingError(
                f"Could not verify the key with {name}: {reason}; nothing was stored."
            ) from None
        ws_id = await self.workspace_id(ctx)
        masked = mask_key(plain)
        async with self.db.session() as session:
            await stores.set_key(
                session,
                workspace_id=ws_id,
                provider=provider,
                ciphertext=self.vault.encrypt(key),
                masked=masked,
                set_by=ctx.user_id,
            )
        log.info("api key set for workspace %s provider %s by %s", ws_id, provider, ctx.user_id)
        return KeyStatus(provider, masked, info)

    async def key_status(self, ctx: Invocation) -> list[KeyStatus]:
        self.require_admin(ctx, "see the API key status")
        ws_id = await self.workspace_id(ctx)
        out: list[KeyStatus] = []
        for provider in self.adapters:
            async with self.db.session() as session:
                row = await stores.get_key(session, workspace_id=ws_id, provider=provider)
            fallback = False
            if row is None:
                if self.settings.fallback_key(provider) is None:
                    continue
                masked, fallback = "the server's fallback key", True
            else:
                masked = row.masked
            try:
                key = await self._resolve_key(ws_id, provider)
                assert key is not None
                info: KeyInfo | None = await self._adapter(provider).check_key(key)
                problem = None
            except (ProviderError, UserFacingError) as exc:
                info = None
                problem = getattr(exc, "user_message", None) or getattr(exc, "message", "")
            out.append(KeyStatus(provider, masked, info, problem, fallback))
        return out

    async def clear_key(self, ctx: Invocation, provider: str | None) -> list[str]:
        self.require_admin(ctx, "clear the API key")
        ws_id = await self.workspace_id(ctx)
        providers = [provider] if provider else list(self.adapters)
        cleared: list[str] = []
        async with self.db.session() as session:
            for prov in providers:
                if await stores.delete_key(session, workspace_id=ws_id, provider=prov):
                    cleared.append(prov)
        return cleared

    # -- chat -------------------------------------------------------------------------------

    async def find_conversation(self, ctx: Invocation, anchor: str) -> Conversation | None:
        ws_id = await self.workspace_id(ctx)
        async with self.db.session() as session:
            return await stores.find_conversation_by_anchor(
                session, workspace_id=ws_id, anchor=anchor
            )

    async def find_conversation_by_id(
        self, ctx: Invocation, conversation_id: int
    ) -> Conversation | None:
        ws_id = await self.workspace_id(ctx)
        async with self.db.session() as session:
            return await stores.get_conversation(
                session, workspace_id=ws_id, conversation_id=conversation_id
            )

    async def attach_anchor(self, ctx: Invocation, anchor: str, conversation_id: int) -> None:
        """Remember that replies to platform message ``anchor`` continue the conversation."""
        ws_id = await self.workspace_id(ctx)
        async with self.db.session() as session:
            await stores.add_anchor(
                session, workspace_id=ws_id, anchor=anchor, conversation_id=conversation_id
            )

    async def _allowed(self, session: AsyncSession, ws_id: int, model: str | None) -> AllowedModel:
        if model is None:
            ws = await stores.get_workspace_by_id(session, workspace_id=ws_id)
            model = ws.default_model if ws else None
            if model is None:
                raise ModelNotAllowed(
                    "This workspace has no default model; pick one with /chat --model <id> "
                    "or ask an admin for /models default <id>."
                )
        row = await stores.get_model(session, workspace_id=ws_id, model_id=model)
        if row is None:
            raise ModelNotAllowed(
                f"`{model}` is not allowed in this workspace; see /models for the ones that are."
            )
        return row

    async def _prepare(
        self, ws_id: int, model: str | None, conversation: Conversation | None
    ) -> tuple[AllowedModel, ProviderKey | None, list[ChatMessage], bool | None]:
        """Everything a chat needs from the database, read in one transaction: the model, the
        key, the history, and whether the workspace has any spend limit."""
        async with self.db.session() as session:
            allowed = await self._allowed(
                session, ws_id, conversation.model if conversation is not None else model
            )
            key_row = await stores.get_key(session, workspace_id=ws_id, provider=allowed.provider)
            history: list[ChatMessage] = []
            if conversation is not None and conversation.id is not None:
                rows = await stores.get_messages(
                    session,
                    workspace_id=ws_id,
                    conversation_id=conversation.id,
                    limit=HISTORY_LIMIT,
                )
                history = [
                    ChatMessage(role=r.role, content=r.content)  # type: ignore[arg-type]
                    for r in rows
                    if r.role in ("system", "user", "assistant")
                ]
            has_limits = (
                await stores.has_budgets(session, workspace_id=ws_id)
                if self.budgets is not None
                else None
            )
        return allowed, key_row, history, has_limits

    def _end_user(self, ctx: Invocation) -> str:
        raw = f"{ctx.platform}:{ctx.workspace_id}:{ctx.user_id}".encode()
        return hashlib.sha256(raw).hexdigest()[:24]

    async def chat(
        self,
        ctx: Invocation,
        prompt: str,
        model: str | None = None,
        *,
        conversation: Conversation | None = None,
        anchors: Sequence[str] = (),
    ) -> AsyncIterator[Reply]:
        """Run one chat turn: ``ChatStarted``, ``ChatDelta``…, then ``ChatCompleted``; or one
        ``ChatFailed`` when it fails before any text (nothing is charged then).

        ``anchors``: the platform messages whose replies continue this conversation. The
        front-end may still add to the sequence (a list) while the answer streams, e.g. the
        message it posted on ``ChatStarted``; they are written with the turn, in the same
        transaction, once the answer is complete.
        """
        started = time.monotonic()
        try:
            ws_id = await self.workspace_id(ctx)
            allowed, key_row, history, has_limits = await self._prepare(ws_id, model, conversation)
            provider = allowed.provider
            adapter = self._adapter(provider)
            key = self._key_from_row(key_row, provider)
            assert key is not None
            pricing = _pricing_of(allowed)
            if pricing.input_per_1m is None:
                pricing = self.model_settings.price(provider, allowed.model_id) or pricing
            messages = [*history, ChatMessage(role="user", content=prompt)]
            reservation = None
            if self.budgets is not None:
                reservation = await self.budgets.reserve(
                    workspace_id=ws_id,
                    channel_id=ctx.channel_id,
                    estimate_nano=estimate_nano(messages, pricing),
                    has_limits=has_limits,
                )
        except (UserFacingError, BudgetExceeded) as exc:
            yield ChatFailed(exc.message)
            return
        except ProviderError as exc:
            yield ChatFailed(exc.user_message)
            return

        defaults = self.model_settings.defaults(provider, allowed.model_id)
        request = ChatRequest(
            model=allowed.model_id,
            messages=messages,
            api_key=key,
            temperature=defaults.temperature,
            max_completion_tokens=defaults.max_completion_tokens,
            user=self._end_user(ctx),
        )
        turn = _Turn(ctx, ws_id, allowed, prompt, conversation, started, reservation, anchors)
        yield ChatStarted(model=allowed.model_id)
        parts: list[str] = []
        final: StreamFinished | StreamFailed | None = None
        try:
            async for event in adapter.stream_chat(request):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    yield ChatDelta(event.text)
                else:
                    final = event
        finally:
            if final is None:
                # The consumer went away (cancelled, or the platform failed): keep the ledger
                # honest. Some providers still bill a closed stream, so the cost is unknown.
                try:
                    await self._record(
                        turn, _Ending("".join(parts), "cancelled", ChatCost(None, "unknown"))
                    )
                except Exception:
                    log.exception("could not record a cancelled chat")
        assert final is not None
        text = "".join(parts)
        seconds = time.monotonic() - started
        if isinstance(final, StreamFailed) and not final.partial:
            await self._record(
                turn,
                _Ending.of(final, "", "error", ChatCost(Decimal(0), "none")),
            )
            yield ChatFailed(f"{final.error.user_message} Nothing was charged.")
            return
        usage = final.usage
        cost = settle_cost(usage, pricing)
        cut_off = isinstance(final, StreamFailed)
        conversation_id, notices = await self._record(
            turn, _Ending.of(final, text, "cut_off" if cut_off else "ok", cost)
        )
        shown_model = final.model_served or allowed.model_id
        footer = format_footer(
            model=shown_model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else 0,
            cost=cost,
            seconds=seconds,
        )
        all_notices: list[str] = []
        if isinstance(final, StreamFailed):
            all_notices.append(
                f"⚠ The answer was cut off: {final.error.user_message}"
                if not final.error.user_message.startswith("The answer was cut off")
                else f"⚠ {final.error.user_message}"
            )
        all_notices.extend(notices)
        yield ChatCompleted(
            text=text,
            footer=footer,
            model=shown_model,
            conversation_id=conversation_id,
            cost=cost,
            cut_off=cut_off,
            notices=tuple(all_notices),
        )

    async def _record(self, turn: _Turn, ending: _Ending) -> tuple[int, Sequence[str]]:
        """Write the turn and its usage row in one transaction; returns the conversation id.

        The answer has been paid for by now, so a database that is briefly unreachable (a
        restart, a failover) must not lose its row: the transaction is tried again for up to
        ``WRITE_RETRY_SECONDS``. A retry after a commit whose acknowledgement was lost would
        write the row twice, so a retry first looks for the generation's row.
        """
        latency_ms = int((time.monotonic() - turn.started) * 1000)
        conversation_id: int | None = None
        async for attempt in stamina.retry_context(
            on=is_transient,
            attempts=None,
            timeout=WRITE_RETRY_SECONDS,
            wait_initial=0.2,
            wait_max=2.0,
        ):
            with attempt:
                if attempt.num > 1:
                    log.warning("retrying the usage record of a chat (attempt %d)", attempt.num)
                conversation_id = await self._write_turn(
                    turn, ending, latency_ms=latency_ms, retry=attempt.num > 1
                )
        notices: Sequence[str] = ()
        if self.budgets is not None and turn.reservation is not None:
            try:
                notices = await self.budgets.settle(turn.reservation, cost_nano=ending.cost.nano)
            except Exception:
                # The usage row is written and counts against the limits; the hold itself
                # lapses at its expiry. The user still gets the answer.
                log.warning("could not release a budget reservation", exc_info=True)
        return conversation_id or 0, notices

    async def _write_turn(
        self, turn: _Turn, ending: _Ending, *, latency_ms: int, retry: bool
    ) -> int | None:
        ctx, ws_id, allowed = turn.ctx, turn.ws_id, turn.allowed
        conversation_id = turn.conversation.id if turn.conversation is not None else None
        async with self.db.session() as session:
            if retry and ending.generation_id is not None:
                done = await stores.find_usage_by_generation(
                    session, workspace_id=ws_id, generation_id=ending.generation_id
                )
                if done is not None:
                    return done.conversation_id
            if ending.outcome != "error":
                messages = [("user", turn.prompt)]
                if ending.answer:
                    messages.append(("assistant", ending.answer))
                if conversation_id is None:
                    conversation_id = await stores.start_conversation(
                        session,
                        workspace_id=ws_id,
                        channel_id=ctx.channel_id,
                        user_id=ctx.user_id,
                        provider=allowed.provider,
                        model=allowed.model_id,
                        messages=messages,
                        anchors=list(turn.anchors),
                    )
                else:
                    await stores.add_messages(
                        session,
                        workspace_id=ws_id,
                        conversation_id=conversation_id,
                        messages=messages,
                    )
                    for anchor in turn.anchors:
                        await stores.add_anchor(
                            session,
                            workspace_id=ws_id,
                            anchor=anchor,
                            conversation_id=conversation_id,
                        )
            usage = ending.usage
            await stores.record_usage(
                session,
                record=UsageRecord(
                    workspace_id=ws_id,
                    channel_id=ctx.channel_id,
                    user_id=ctx.user_id,
                    provider=allowed.provider,
                    model_requested=allowed.model_id,
                    model_served=ending.model_served,
                    prompt_tokens=usage.prompt_tokens if usage else 0,
                    cached_tokens=usage.cached_tokens if usage else 0,
                    completion_tokens=usage.completion_tokens if usage else 0,
                    reasoning_tokens=usage.reasoning_tokens if usage else 0,
                    cost_nano=ending.cost.nano,
                    cost_source=ending.cost.source,
                    generation_id=ending.generation_id,
                    latency_ms=latency_ms,
                    outcome=ending.outcome,
                    error_kind=ending.error_kind,
                    conversation_id=conversation_id,
                    created_at=self.clock(),
                ),
            )
        return conversation_id

    # -- costs ------------------------------------------------------------------------------

    async def costs(self, ctx: Invocation, period: Period, scope: str = "channel") -> CostReport:
        if scope == "workspace":
            self.require_admin(ctx, "see the workspace's spend")
        ws_id = await self.workspace_id(ctx)
        now = self.clock()
        window = period_window(period, now)
        channel = ctx.channel_id if scope == "channel" else None
        budgets: list[BudgetState] = []
        async with self.db.session() as session:
            # Reads the daily rollup for whole days: a month costs days x keys rows.
            summary = await stores.summarize_usage(
                session,
                workspace_id=ws_id,
                channel_id=channel,
                since=window.since,
                until=window.until,
            )
            if scope == "workspace":
                budgets = await budget_states(session, workspace_id=ws_id, channel_id=None, now=now)
        return CostReport(scope, channel, window, summary, tuple(budgets), now)

    # -- budgets ----------------------------------------------------------------------------

    def _require_budgets(self, ctx: Invocation, action: str) -> None:
        self.require_admin(ctx, action)
        if self.budgets is None:
            # Without a guard nothing would enforce a limit: do not pretend to keep one.
            raise UserFacingError("Budgets are not enabled on this server.")

    async def budget_overview(self, ctx: Invocation) -> BudgetOverview:
        self._require_budgets(ctx, "see the budgets")
        ws_id = await self.workspace_id(ctx)
        now = self.clock()
        async with self.db.session() as session:
            states = await budget_states(
                session, workspace_id=ws_id, channel_id=ctx.channel_id, now=now
            )
        return BudgetOverview(ctx.channel_id, tuple(states), now)

    async def set_budget(
        self, ctx: Invocation, amount_usd: Decimal, *, channel: bool
    ) -> BudgetState:
        """Set the workspace's (or, with ``channel``, this channel's) monthly limit."""
        self._require_budgets(ctx, "change the budgets")
        limit_nano = usd_to_nano(amount_usd)
        if limit_nano <= 0:
            raise UserFacingError("The limit must be more than $0.")
        ws_id = await self.workspace_id(ctx)
        channel_id = ctx.channel_id if channel else stores.WORKSPACE_BUDGET
        async with self.db.session() as session:
            await stores.set_budget(
                session,
                workspace_id=ws_id,
                channel_id=channel_id,
                limit_nano=limit_nano,
                set_by=ctx.user_id,
            )
        now = self.clock()
        async with self.db.session() as session:
            states = await budget_states(
                session, workspace_id=ws_id, channel_id=ctx.channel_id, now=now
            )
        wanted = "channel" if channel else "workspace"
        log.info("budget (%s) set for workspace %s by %s", wanted, ws_id, ctx.user_id)
        return next(s for s in states if s.scope == wanted)

    async def clear_budget(self, ctx: Invocation, *, channel: bool) -> bool:
        """Remove a limit; False when there was none."""
        self._require_budgets(ctx, "change the budgets")
        ws_id = await self.workspace_id(ctx)
        channel_id = ctx.channel_id if channel else stores.WORKSPACE_BUDGET
        async with self.db.session() as session:
            return await stores.clear_budget(session, workspace_id=ws_id, channel_id=channel_id)


# A chat's answer is rarely longer than this; the estimate only bounds budget overshoot.
ESTIMATED_COMPLETION_TOKENS = 1000


def estimate_nano(messages: Sequence[ChatMessage], pricing: ModelPricing) -> int:
    """A pessimistic cost estimate for budget reservations (about 4 characters a token)."""
    prompt_tokens = sum(len(m.content) for m in messages) // 4 + 16
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=ESTIMATED_COMPLETION_TOKENS)
    cost = settle_cost(usage, pricing)
    return cost.nano or 0
