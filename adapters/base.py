"""Neutral types every provider adapter speaks: requests, usage, stream events, the protocol."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import SecretStr

from adapters.errors import ProviderError

Role = Literal["system", "user", "assistant"]
#: OpenRouter's ``reasoning.effort`` values routerbot offers.
Effort = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image sent with a message (the adapter encodes it, e.g. as a data URL)."""

    media_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class FilePart:
    """A document (a PDF) sent with a message for the provider to read."""

    filename: str
    media_type: str
    data: bytes = field(repr=False)


ContentPart = ImagePart | FilePart


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str
    #: Images and files that go with ``content`` (the newest user message only; history
    #: keeps a reference to them in its text, never the bytes).
    parts: tuple[ContentPart, ...] = ()


@dataclass(frozen=True, slots=True)
class WebSearch:
    """Let the model search the web (OpenRouter's ``openrouter:web_search`` server tool)."""

    #: Results per search.
    max_results: int
    #: Searches per request.
    max_uses: int


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion request, provider-neutral."""

    model: str
    messages: Sequence[ChatMessage]
    api_key: SecretStr
    temperature: float | None = None
    max_completion_tokens: int | None = None
    #: Stable, non-identifying end-user id forwarded to the provider for abuse tracking.
    user: str | None = None
    #: Extra provider-specific body fields (e.g. OpenRouter ``provider`` routing).
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    #: Web search for this request (None: none).
    web_search: WebSearch | None = None
    #: Reasoning effort for models that reason (None: the model's default).
    reasoning_effort: Effort | None = None
    #: Yield a :class:`StreamAccepted` as soon as the provider has accepted the request.
    announce_acceptance: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts and, where the provider reports it, the cost in USD.

    ``prompt_tokens`` includes ``cached_tokens``; ``completion_tokens`` includes
    ``reasoning_tokens`` (OpenRouter's and OpenAI's convention).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    #: Provider-reported cost in USD (OpenRouter ``usage.cost``), exact as sent.
    cost: Decimal | None = None
    #: Web searches the provider ran (``usage.server_tool_use_details.web_search_requests``).
    web_search_requests: int = 0


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer cites (OpenRouter's ``url_citation`` annotations)."""

    url: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of answer text."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamAccepted:
    """The provider answered 200 and named the generation: from now on it may bill it.

    Yielded (only when the request sets ``announce_acceptance``) before any text, as soon as
    the generation id is known: at the response headers (OpenRouter's ``X-Generation-Id``),
    else once the first chunk has named it (``None`` if none does). A caller that must never
    lose a billed chat puts it on record here. A stream that fails before its first text and
    is retried announces the new attempt's generation too, which replaces the earlier one (a
    generation that produced no text is not billed).
    """

    generation_id: str | None
    #: The model the request asked for.
    model: str


@dataclass(frozen=True, slots=True)
class StreamFinished:
    """The stream ended normally (after ``[DONE]`` or the end of the body)."""

    usage: Usage | None
    model_served: str | None
    generation_id: str | None
    finish_reason: str | None
    #: Sources the answer cites, in the order they came.
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream ended with an error. ``partial`` is True when text had been delivered.

    When ``partial`` is True the error is a :class:`adapters.errors.CutOffError`.
    """

    error: ProviderError
    partial: bool
    usage: Usage | None = None
    model_served: str | None = None
    generation_id: str | None = None
    citations: tuple[Citation, ...] = ()


StreamEvent = TextDelta | StreamAccepted | StreamFinished | StreamFailed


@dataclass(frozen=True, slots=True)
class ModelPricing:
    """USD per 1M tokens; ``None`` where the provider did not say."""

    input_per_1m: Decimal | None = None
    output_per_1m: Decimal | None = None
    cached_input_per_1m: Decimal | None = None
    #: USD per web search the provider runs for a chat (``None``: not known).
    web_search_per_request: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    name: str | None = None
    pricing: ModelPricing = field(default_factory=ModelPricing)
    context_length: int | None = None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the provider says about a key. Amounts are USD (credits)."""

    label: str | None = None
    limit: Decimal | None = None
    limit_remaining: Decimal | None = None
    usage: Decimal | None = None


@dataclass(frozen=True, slots=True)
class GenerationInfo:
    """OpenRouter ``GET /generation`` stats for one request."""

    id: str
    total_cost: Decimal | None
    model: str | None = None
    provider_name: str | None = None
    tokens_prompt: int | None = None
    tokens_completion: int | None = None
    native_tokens_prompt: int | None = None
    native_tokens_completion: int | None = None
    native_tokens_cached: int | None = None


@runtime_checkable
class ProviderAdapter(Protocol):
    """What the core needs from an upstream. Implementations never raise out of ``stream_chat``;
    every failure arrives as a final :class:`StreamFailed` event."""

    #: Short provider name as used in settings and storage: ``openrouter``, ``fireworks``.
    name: str

    def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Yield ``TextDelta`` events, then exactly one ``StreamFinished`` or ``StreamFailed``
        (with ``announce_acceptance``, a ``StreamAccepted`` before any text, per attempt).

        Closing the generator early closes the provider's stream at once."""
        ...

    async def lookup_model(self, model_id: str, api_key: SecretStr | None) -> ModelInfo | None:
        """Look one model up (with pricing). ``None`` when the provider does not know it.
        Raises :class:`ProviderError` when the provider cannot be asked."""
        ...

    async def check_key(self, api_key: SecretStr) -> KeyInfo:
        """Verify a key. Raises :class:`AuthenticationError` when it is refused."""
        ...

    async def get_generation(self, generation_id: str, api_key: SecretStr) -> GenerationInfo | None:
        """Per-request stats where the provider has them; ``None`` otherwise."""
        ...

    async def aclose(self) -> None: ...
