"""The core built over in-memory ports and a scripted provider: no database, no HTTP."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from pydantic import SecretStr

from adapters.base import (
    ChatRequest,
    GenerationInfo,
    KeyInfo,
    ModelInfo,
    ModelPricing,
    StreamEvent,
    StreamFinished,
    TextDelta,
    Usage,
)
from adapters.errors import AuthenticationError
from bot.config import Settings
from bot.core.dispatch import Dispatcher
from bot.core.ports import KeyDecryptError
from bot.core.pricing import ModelSettings, ModelSettingsFile
from bot.core.replies import Invocation, Reply
from bot.core.service import ProviderService
from bot.core.spend.guard import DatabaseBudgetGuard
from tests.unit.memory_store import MemoryStore

KEY = "sk-or-v1-" + "0" * 48
CHEAP = "openai/gpt-4o-mini"
STRONG = "anthropic/claude-sonnet-4.5"
MARCH = datetime(2026, 3, 10, 12, 0)

ADMIN = Invocation("console", "acme", "general", "alice", is_admin=True)
MEMBER = Invocation("console", "acme", "general", "bob", is_admin=False)


class FakeVault:
    """Reversible and obviously not plain text; refuses what it did not seal."""

    def encrypt(self, secret: SecretStr) -> bytes:
        return b"sealed:" + secret.get_secret_value().encode()[::-1]

    def decrypt(self, ciphertext: bytes) -> SecretStr:
        if not ciphertext.startswith(b"sealed:"):
            raise KeyDecryptError()
        return SecretStr(ciphertext.removeprefix(b"sealed:")[::-1].decode())


@dataclass
class ScriptedProvider:
    """A ``ProviderAdapter`` whose answers are scripted: each chat pops the next script (the
    default script answers "Hello there." with reported usage)."""

    name: str = "openrouter"
    scripts: list[list[StreamEvent]] = field(default_factory=list)
    requests: list[ChatRequest] = field(default_factory=list)
    known_models: dict[str, ModelPricing] = field(default_factory=dict)
    #: The provider's record (``GET /generation``): found, or an error to raise.
    generations: dict[str, GenerationInfo | Exception] = field(default_factory=dict)
    generation_lookups: list[str] = field(default_factory=list)

    @staticmethod
    def answer(
        text: str = "Hello there.", *, cost: str | None = "0.0001", model: str | None = None
    ) -> list[StreamEvent]:
        """Words of ``text`` as deltas, then usage with the reported ``cost`` (USD)."""
        usage = Usage(
            prompt_tokens=10,
            completion_tokens=5,
            cost=Decimal(cost) if cost is not None else None,
        )
        pieces: list[StreamEvent] = [TextDelta(w) for w in text.split(" ") if w]
        return [*pieces, StreamFinished(usage, model, "gen-" + text[:8], "stop")]

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        self.requests.append(request)
        script = self.scripts.pop(0) if self.scripts else self.answer()
        for event in script:
            yield event

    async def lookup_model(self, model_id: str, api_key: SecretStr | None) -> ModelInfo | None:
        pricing = self.known_models.get(model_id)
        return ModelInfo(model_id, pricing=pricing) if pricing is not None else None

    async def check_key(self, api_key: SecretStr) -> KeyInfo:
        if api_key.get_secret_value() != KEY:
            raise AuthenticationError(status_code=401)
        return KeyInfo(limit=Decimal(10), limit_remaining=Decimal(7))

    async def get_generation(self, generation_id: str, api_key: SecretStr) -> GenerationInfo | None:
        self.generation_lookups.append(generation_id)
        found = self.generations.get(generation_id)
        if isinstance(found, Exception):
            raise found
        return found

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self, now: datetime = MARCH) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def model_settings(models: Sequence[tuple[str, str, str]] = ()) -> ModelSettings:
    """Recommended OpenRouter models as (id, input, output) USD per 1M tokens."""
    models = models or [(STRONG, "3", "15"), (CHEAP, "0.15", "0.6")]
    pricing = {
        model_id: {"inputCostPer1M": Decimal(i), "outputCostPer1M": Decimal(o)}
        for model_id, i, o in models
    }
    return ModelSettings(
        ModelSettingsFile.model_validate({"version": 1, "pricing": {"openrouter": pricing}})
    )


@dataclass
class Core:
    store: MemoryStore
    provider: ScriptedProvider
    service: ProviderService
    dispatcher: Dispatcher
    clock: Clock

    async def run(self, ctx: Invocation, text: str) -> list[Reply]:
        return [r async for r in self.dispatcher.run_text(ctx, text)]


def build_core(*, budgets: bool = True) -> Core:
    store = MemoryStore()
    provider = ScriptedProvider()
    clock = Clock()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    owner = "core-over-memory"
    service = ProviderService(
        settings=settings,
        store=store,
        vault=FakeVault(),
        adapters={"openrouter": provider},
        model_settings=model_settings(),
        budgets=DatabaseBudgetGuard(store, clock=clock, owner=owner) if budgets else None,
        clock=clock,
        owner=owner,
    )
    return Core(store, provider, service, Dispatcher(service), clock)
