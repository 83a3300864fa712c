"""Chat over any OpenAI-compatible API: one pooled httpx client, SSE streaming, errors, retries.

``OpenAICompatibleAdapter.stream_chat`` turns one ``POST /chat/completions`` with ``stream: true``
into ``TextDelta`` events followed by exactly one ``StreamFinished`` or ``StreamFailed``. It reads
the stream to ``data: [DONE]`` (the usage chunk, ``choices: []``, comes after ``finish_reason``),
parses JSON with ``parse_float=Decimal`` so ``usage.cost`` stays exact, and maps every failure
onto :mod:`adapters.errors`:

    where it happens                      what the caller gets
    ------------------------------------  ---------------------------------------------------
    HTTP status before the stream         the class for the status, ``partial=False``
    connect/read failures before text     ProviderUnavailableError / RequestTimeoutError
    error chunk (HTTP 200) before text    the class for the error's code, ``partial=False``
    anything after text was yielded       CutOffError, ``partial=True``, usage if it came
    bad JSON, stream ends early           MalformedResponseError (CutOffError after text)

Retryable failures are retried with backoff (stamina) only while no text has been yielded; a
``Retry-After`` longer than :data:`RETRY_AFTER_CAP` gives up at once with the RateLimitedError.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Self

import httpx
import stamina
from httpx_sse import EventSource, ServerSentEvent
from pydantic import SecretStr

from adapters.base import (
    ChatRequest,
    GenerationInfo,
    KeyInfo,
    ModelInfo,
    StreamEvent,
    StreamFailed,
    StreamFinished,
    TextDelta,
    Usage,
)
from adapters.error_facts import error_metadata
from adapters.errors import (
    AuthenticationError,
    BadRequestError,
    CutOffError,
    InsufficientCreditsError,
    MalformedResponseError,
    ModelNotFoundError,
    ModerationError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    RequestTimeoutError,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_CONNECTIONS",
    "POOL_TIMEOUT",
    "READ_TIMEOUT",
    "RETRY_AFTER_CAP",
    "STREAM_DEADLINE",
    "WRITE_TIMEOUT",
    "OpenAICompatibleAdapter",
    "as_decimal",
    "error_from_payload",
    "error_from_response",
    "loads_exact",
    "parse_retry_after",
    "parse_usage",
    "retry_backoff",
]

logger = logging.getLogger(__name__)

#: Seconds to establish a TCP/TLS connection.
CONNECT_TIMEOUT = 10.0
#: Seconds allowed between two reads. While streaming this is the "hang" detector: a model
#: that sends nothing (not even an SSE comment) for this long is treated as timed out.
READ_TIMEOUT = 60.0
#: Seconds to send the request body.
WRITE_TIMEOUT = 10.0
#: Seconds to wait for a free connection from the pool.
POOL_TIMEOUT = 10.0
DEFAULT_TIMEOUT = httpx.Timeout(
    connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, write=WRITE_TIMEOUT, pool=POOL_TIMEOUT
)
#: One connection per stream in flight. A cap below the number of concurrent chats makes the
#: rest queue for a stream to end (seconds to minutes) and fail at POOL_TIMEOUT; and httpcore
#: rescans every queued request against every connection on each change, so a queue also
#: costs CPU. A thousand chats in flight must not queue.
MAX_CONNECTIONS = 4096
DEFAULT_LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS, max_keepalive_connections=100, keepalive_expiry=30.0
)

#: Extra attempts after the first, only ever before the first token.
DEFAULT_MAX_RETRIES = 2
RETRY_WAIT_INITIAL = 0.5
RETRY_WAIT_MAX = 8.0
#: No new attempt starts once this many seconds have passed since the first.
RETRY_TOTAL_TIMEOUT = 30.0
#: Seconds a whole answer may take, from the request to its last chunk. The read timeout alone
#: cannot bound it: OpenRouter sends ``: OPENROUTER PROCESSING`` comments while a model works,
#: and a stream of nothing but comments would otherwise never end. Fifteen minutes is also how
#: long a chat's budget reservation lasts.
STREAM_DEADLINE = 900.0
#: A ``Retry-After`` up to this many seconds is waited out; a longer one fails at once so the
#: user is told when to come back instead of watching a spinner.
RETRY_AFTER_CAP = 10.0
#: After ``[DONE]``, how long to wait for the body's end so the connection returns to the pool.
DRAIN_TIMEOUT = 0.5
#: Provider messages are kept for logs, trimmed to this length.
MAX_DETAIL_CHARS = 500

USER_AGENT = "routerbot"


# --------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------

# String codes seen in ``error.code`` / ``error.metadata.error_type`` (OpenRouter's ApiErrorType
# and OpenAI-style codes), mapped to the HTTP status that means the same thing.
_STRING_CODES: dict[str, int] = {
    "authentication": 401,
    "invalid_api_key": 401,
    "unauthorized": 401,
    "payment_required": 402,
    "insufficient_quota": 402,
    "insufficient_credits": 402,
    "permission_denied": 403,
    "content_policy_violation": 403,
    "content_filter": 403,
    "moderation": 403,
    "refusal": 403,
    "forbidden": 403,
    "not_found": 404,
    "model_not_found": 404,
    "timeout": 408,
    "request_timeout": 408,
    "rate_limit_exceeded": 429,
    "rate_limited": 429,
    "too_many_requests": 429,
    "server": 500,
    "server_error": 500,
    "internal_error": 500,
    "provider_unavailable": 502,
    "provider_overloaded": 503,
    "overloaded": 503,
    "service_unavailable": 503,
    "invalid_request": 400,
    "invalid_request_error": 400,
    "invalid_prompt": 400,
    "context_length_exceeded": 400,
    "max_tokens_exceeded": 400,
    "token_limit_exceeded": 400,
    "string_too_long": 400,
    "payload_too_large": 413,
    "unprocessable": 422,
}


def _scrub(text: str | None, secret: str | None) -> str | None:
    """Trim a provider message for ``detail`` and blank out the request's key if echoed."""
    if text is None:
        return None
    if secret:
        text = text.replace(secret, "[redacted]")
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1] + "…"
    return text


def _status_from_code(code: object) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, Decimal) and code == code.to_integral_value():
        return int(code)
    if isinstance(code, str):
        stripped = code.strip()
        if stripped.isdigit():
            return int(stripped)
        return _STRING_CODES.get(stripped.lower())
    return None


def _code_text(code: object) -> str | None:
    if code is None or isinstance(code, bool):
        return None
    return str(code)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _error_for_status(
    status: int,
    *,
    message: str | None,
    code: str | None,
    retry_after: float | None = None,
    model: str | None = None,
) -> ProviderError:
    """The taxonomy class for an HTTP-like status, with a user sentence where one helps."""
    kw: dict[str, Any] = {"status_code": status, "provider_code": code, "detail": message}
    if status == 400:
        return BadRequestError(**kw)
    if status == 401:
        return AuthenticationError(**kw)
    if status == 402:
        return InsufficientCreditsError(**kw)
    if status == 403:
        return ModerationError(**kw)
    if status == 404:
        text = (
            f"The provider does not know the model `{model}`; see /models for the ones you can use."
            if model
            else None
        )
        return ModelNotFoundError(text, **kw)
    if status in (408, 504, 524):
        return RequestTimeoutError(**kw)
    if status == 429:
        return RateLimitedError(retry_after=retry_after, **kw)
    if status == 502:
        return ProviderUnavailableError(
            "The model is down at the provider right now (502); please try again later.", **kw
        )
    if status == 503:
        return ProviderUnavailableError(
            "No provider can serve this model right now (503); please try again later.", **kw
        )
    if 500 <= status <= 599:
        return ProviderUnavailableError(**kw)
    if 400 <= status <= 499:
        return BadRequestError(**kw)
    return MalformedResponseError(**kw)


def error_from_payload(
    error: object,
    *,
    status: int | None = None,
    model: str | None = None,
    secret: str | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """Map an ``{"code", "message", "metadata"}`` error object (``code`` int or string).

    ``status`` is the HTTP status when there was one; a mid-stream error has only its code, and
    an unknown code there means the upstream failed: ProviderUnavailableError.
    """
    code: object = None
    message: str | None = None
    error_type: object = None
    if isinstance(error, Mapping):
        code = error.get("code")
        raw_message = error.get("message")
        message = raw_message if isinstance(raw_message, str) else None
        metadata = error.get("metadata")
        if isinstance(metadata, Mapping):
            error_type = metadata.get("error_type")
    elif isinstance(error, str):
        message = error
    resolved = _status_from_code(code) or _status_from_code(error_type)
    if status is None or not 400 <= status <= 599:
        status = resolved if resolved is not None and 400 <= resolved <= 599 else 502
    result = _error_for_status(
        status,
        message=_scrub(message, secret),
        code=_code_text(code) or _code_text(error_type),
        retry_after=retry_after,
        model=model,
    )
    if isinstance(error, Mapping):
        result.metadata = error_metadata(error.get("metadata"))
    return result


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    model: str | None = None,
    secret: str | None = None,
) -> ProviderError:
    """Map a non-2xx response (body ``{"error": {...}}`` when the provider follows the format)."""
    error: object = None
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        error = payload.get("error", payload.get("message"))
    if error is None and body:
        # Not the documented shape (a proxy's HTML page, plain text): keep a little for logs.
        error = body[:MAX_DETAIL_CHARS].decode("utf-8", "replace")
    retry_after = parse_retry_after(headers.get("retry-after")) if status == 429 else None
    return error_from_payload(
        error, status=status, model=model, secret=secret, retry_after=retry_after
    )


def _from_transport(exc: httpx.HTTPError) -> ProviderError:
    """A failed connection or read, before any text: timeout or unavailable (both retryable)."""
    detail = f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS]
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(detail=detail)
    if isinstance(exc, httpx.DecodingError):
        return MalformedResponseError(detail=detail)
    return ProviderUnavailableError(
        "Could not reach the model provider; please try again later.", detail=detail
    )


_CUT_OFF_MESSAGES: dict[type[ProviderError], str] = {
    RequestTimeoutError: "The answer was cut off: the model stopped responding.",
    MalformedResponseError: "The answer was cut off: the provider sent something unreadable.",
}


def _cut_off(cause: ProviderError, *, dropped: bool = False) -> CutOffError:
    """Wrap a failure that came after text: the partial answer stands, marked as cut off."""
    if isinstance(cause, CutOffError):
        return cause
    if dropped:
        text: str | None = "The answer was cut off: the connection to the provider dropped."
    else:
        text = _CUT_OFF_MESSAGES.get(type(cause))
    detail = f"{cause.kind}: {cause.detail}" if cause.detail else cause.kind
    return CutOffError(
        text, status_code=cause.status_code, provider_code=cause.provider_code, detail=detail
    )


def retry_backoff(exc: Exception) -> bool | float:
    """stamina backoff hook: whether to retry ``exc`` and, for a usable Retry-After, how long.

    Only :class:`ProviderError` subclasses marked ``retryable`` are retried; the caller never
    reaches this once text was yielded.
    """
    if not isinstance(exc, ProviderError) or not exc.retryable:
        return False
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        if exc.retry_after > RETRY_AFTER_CAP:
            return False
        return exc.retry_after
    return True


# --------------------------------------------------------------------------------------------
# Stream parsing
# --------------------------------------------------------------------------------------------


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return int(value)
    return 0


def as_decimal(value: object) -> Decimal | None:
    """A JSON number or numeric string as an exact Decimal; ``None`` for anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Only reached for JSON parsed elsewhere without parse_float; str() keeps the
        # shortest repr rather than the binary expansion.
        return Decimal(str(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def parse_usage(raw: object) -> Usage | None:
    """OpenAI/OpenRouter ``usage`` object → :class:`Usage` (``None`` when absent)."""
    if not isinstance(raw, Mapping):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return Usage(
        prompt_tokens=_as_int(raw.get("prompt_tokens")),
        completion_tokens=_as_int(raw.get("completion_tokens")),
        cached_tokens=_as_int(
            prompt_details.get("cached_tokens") if isinstance(prompt_details, Mapping) else None
        ),
        reasoning_tokens=_as_int(
            completion_details.get("reasoning_tokens")
            if isinstance(completion_details, Mapping)
            else None
        ),
        cost=as_decimal(raw.get("cost")),
    )


def loads_exact(data: str | bytes) -> Any:
    """``json.loads`` keeping every non-integer number as an exact Decimal."""
    return json.loads(data, parse_float=Decimal)


@dataclass
class _StreamState:
    """What one attempt has learned so far; reported in the final event."""

    model_served: str | None = None
    generation_id: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    done: bool = False


class _ChunkParser:
    """Turns one SSE ``data`` payload into answer text, recording metadata on the state."""

    def __init__(self, state: _StreamState, *, model: str, secret: str) -> None:
        self._state = state
        self._model = model
        self._secret = secret

    def feed(self, data: str) -> tuple[str, ProviderError | None]:
        """Return the chunk's text and the error it carries (text first: it was generated)."""
        if data.strip() == "[DONE]":
            self._state.done = True
            return "", None
        try:
            payload = loads_exact(data)
        except ValueError:
            return "", MalformedResponseError(detail="a stream chunk was not valid JSON")
        if not isinstance(payload, Mapping):
            return "", MalformedResponseError(detail="a stream chunk was not a JSON object")
        return self.feed_object(payload, message_key="delta")

    def feed_object(
        self, payload: Mapping[str, Any], *, message_key: str
    ) -> tuple[str, ProviderError | None]:
        """Shared by stream chunks (``delta``) and whole non-streamed results (``message``)."""
        state = self._state
        if isinstance(payload.get("model"), str) and payload["model"]:
            state.model_served = payload["model"]
        if isinstance(payload.get("id"), str) and payload["id"] and state.generation_id is None:
            state.generation_id = payload["id"]
        usage = parse_usage(payload.get("usage"))
        if usage is not None:
            state.usage = usage

        error: ProviderError | None = None
        if payload.get("error") is not None:
            error = self._error(payload["error"])

        choices = payload.get("choices")
        if choices is None:
            return "", error
        if not isinstance(choices, list):
            return "", error or MalformedResponseError(detail="`choices` was not a list")
        parts: list[str] = []
        for choice in choices:
            if not isinstance(choice, Mapping):
                return "", error or MalformedResponseError(detail="a choice was not an object")
            if choice.get("index", 0) not in (0, None):
                continue  # we only ever ask for one choice
            message = choice.get(message_key)
            if isinstance(message, Mapping):
                content = message.get("content")
                if isinstance(content, str) and content:
                    parts.append(content)
            finish_reason = choice.get("finish_reason")
            if finish_reason == "error":
                error = error or self._error(choice.get("error"))
            if isinstance(finish_reason, str):
                state.finish_reason = finish_reason
        return "".join(parts), error

    def _error(self, raw: object) -> ProviderError:
        return error_from_payload(raw, model=self._model, secret=self._secret)


class _OpenStream:
    """One successful-so-far response: owns it, yields text pieces, raises ProviderError."""

    def __init__(
        self,
        stack: AsyncExitStack,
        state: _StreamState,
        parser: _ChunkParser,
        events: AsyncIterator[ServerSentEvent] | None,
        deadline: float,
    ) -> None:
        self._stack = stack
        self.state = state
        self._parser = parser
        self._events = events
        #: ``loop.time()`` by which the answer must have ended.
        self._deadline = deadline
        self._queued: deque[str] = deque()
        self._queued_error: ProviderError | None = None
        #: True when the transport failed (as opposed to the provider reporting an error).
        self.dropped = False

    def queue(self, text: str, error: ProviderError | None = None) -> None:
        if text:
            self._queued.append(text)
        if error is not None and self._queued_error is None:
            self._queued_error = error

    async def aclose(self) -> None:
        await self._stack.aclose()

    async def next_text(self) -> str | None:
        """The next non-empty text piece; ``None`` at a normal end. Raises ProviderError."""
        if self._queued:
            return self._queued.popleft()
        if self._queued_error is not None:
            queued, self._queued_error = self._queued_error, None
            raise queued
        if self._events is None or self.state.done:
            return None
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    sse = await anext(self._events)
            except StopAsyncIteration:
                self._check_eof()
                return None
            except TimeoutError:
                if self.state.finish_reason is not None:
                    return None  # complete; only the usage chunk never came
                expired = RequestTimeoutError(detail="the answer did not end in time")
                expired.retryable = False  # a retry would start past the same deadline
                raise expired from None
            except httpx.HTTPError as exc:
                if self.state.finish_reason is not None:
                    # The answer was complete; only the usage chunk was lost.
                    logger.warning("stream dropped after finish_reason: %s", type(exc).__name__)
                    return None
                self.dropped = not isinstance(exc, httpx.TimeoutException)
                raise _from_transport(exc) from None
            if not sse.data:
                continue  # an event with no data (e.g. a lone ``event:`` line) carries nothing
            text, error = self._parser.feed(sse.data)
            if self.state.done:
                await self._drain()
                return None
            if error is not None:
                if text:
                    self._queued_error = error
                    return text
                raise error
            if text:
                return text

    def _check_eof(self) -> None:
        # Some servers end the body without ``[DONE]``; after a finish_reason the answer is whole.
        if self.state.finish_reason is None:
            raise MalformedResponseError(detail="the stream ended before [DONE] or a finish_reason")

    async def _drain(self) -> None:
        """Read past ``[DONE]`` to the body's end so the pooled connection can be reused."""
        assert self._events is not None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_TIMEOUT):
                async for _ in self._events:
                    pass


# --------------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------------


class OpenAICompatibleAdapter:
    """A :class:`adapters.base.ProviderAdapter` for any OpenAI-compatible ``/v1`` API.

    One pooled ``httpx.AsyncClient`` per instance; the API key travels per request in the
    ``Authorization`` header and is never stored on the client.
    """

    #: Body field for the completion limit; OpenAI and OpenRouter deprecated ``max_tokens``.
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    #: Sent when the request sets no limit; ``None`` leaves the provider's own default.
    default_max_tokens: ClassVar[int | None] = None

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        default_headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_deadline: float = STREAM_DEADLINE,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, max_retries)
        self.stream_deadline = stream_deadline
        headers = {"User-Agent": USER_AGENT, **(default_headers or {})}
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=timeout or DEFAULT_TIMEOUT,
            limits=DEFAULT_LIMITS,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---- chat ---------------------------------------------------------------------------

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body for ``POST /chat/completions`` (streaming)."""
        body: dict[str, Any] = dict(request.extra_body)
        body.update(
            model=request.model,
            messages=[{"role": m.role, "content": m.content} for m in request.messages],
            stream=True,
            stream_options={"include_usage": True},
        )
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_completion_tokens is not None:
            body[self.max_tokens_field] = request.max_completion_tokens
        elif self.default_max_tokens is not None:
            body[self.max_tokens_field] = self.default_max_tokens
        if request.user is not None:
            body["user"] = request.user
        return body

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Yield ``TextDelta`` events, then exactly one ``StreamFinished`` or ``StreamFailed``.

        Never raises, except ``CancelledError``/``GeneratorExit``, which propagate after the
        response is closed.
        """
        states: list[_StreamState] = []
        deadline = asyncio.get_running_loop().time() + self.stream_deadline
        try:
            opened = await self._open_with_retries(request, states, deadline)
        except ProviderError as exc:
            yield self._failed(exc, states, partial=False)
            return
        except Exception as exc:  # a bug must still end as an event, not a traceback
            logger.exception("unexpected failure opening a %s stream", self.name)
            yield self._failed(
                MalformedResponseError(detail=type(exc).__name__), states, partial=False
            )
            return

        state = opened.state
        partial = False
        try:
            while True:
                try:
                    text = await opened.next_text()  # the first piece is already queued
                except ProviderError as exc:
                    error = _cut_off(exc, dropped=opened.dropped) if partial else exc
                    yield self._failed(error, states, partial=partial)
                    return
                except Exception as exc:
                    logger.exception("unexpected failure reading a %s stream", self.name)
                    cause = MalformedResponseError(detail=type(exc).__name__)
                    yield self._failed(
                        _cut_off(cause) if partial else cause, states, partial=partial
                    )
                    return
                if text is None:
                    break
                partial = True
                yield TextDelta(text)
            yield StreamFinished(
                usage=state.usage,
                model_served=state.model_served,
                generation_id=state.generation_id,
                finish_reason=state.finish_reason,
            )
        finally:
            await opened.aclose()

    @staticmethod
    def _failed(error: ProviderError, states: list[_StreamState], *, partial: bool) -> StreamFailed:
        state = states[-1] if states else _StreamState()
        logger.info("stream failed: kind=%s status=%s", error.kind, error.status_code)
        return StreamFailed(
            error=error,
            partial=partial,
            usage=state.usage,
            model_served=state.model_served,
            generation_id=state.generation_id,
        )

    async def _open_with_retries(
        self, request: ChatRequest, states: list[_StreamState], deadline: float
    ) -> _OpenStream:
        async for attempt in stamina.retry_context(
            on=retry_backoff,
            attempts=self.max_retries + 1,
            timeout=RETRY_TOTAL_TIMEOUT,
            wait_initial=RETRY_WAIT_INITIAL,
            wait_max=RETRY_WAIT_MAX,
        ):
            with attempt:
                if attempt.num > 1:
                    logger.info("retrying %s chat, attempt %d", self.name, attempt.num)
                state = _StreamState()
                states.append(state)
                return await self._open(request, state, deadline)
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    async def _open(
        self, request: ChatRequest, state: _StreamState, deadline: float
    ) -> _OpenStream:
        """Send the request and read up to the first piece of text (or the end).

        Everything that fails here has yielded nothing yet, so it may be retried.
        """
        secret = request.api_key.get_secret_value()
        parser = _ChunkParser(state, model=request.model, secret=secret)
        stack = AsyncExitStack()
        try:
            try:
                response = await stack.enter_async_context(
                    self._client.stream(
                        "POST",
                        "chat/completions",
                        json=self.build_body(request),
                        headers={
                            **self._auth(request.api_key),
                            "Accept": "text/event-stream",
                            "Cache-Control": "no-store",
                        },
                    )
                )
                state.generation_id = response.headers.get("x-generation-id")
                if not response.is_success:
                    body = await response.aread()
                    raise error_from_response(
                        response.status_code,
                        body,
                        response.headers,
                        model=request.model,
                        secret=secret,
                    )
                content_type = response.headers.get("content-type", "").partition(";")[0].strip()
                if content_type == "application/json" or content_type.endswith("+json"):
                    opened = _OpenStream(stack, state, parser, events=None, deadline=deadline)
                    self._read_json_result(await response.aread(), parser, opened)
                elif "text/event-stream" in content_type:
                    events = EventSource(response).aiter_sse()
                    stack.push_async_callback(events.aclose)
                    opened = _OpenStream(stack, state, parser, events=events, deadline=deadline)
                else:
                    raise MalformedResponseError(detail=f"unexpected content-type {content_type!r}")
                first = await opened.next_text()
            except httpx.HTTPError as exc:
                raise _from_transport(exc) from None
        except BaseException:
            await stack.aclose()
            raise
        if first is not None:
            opened.queue(first)
        return opened

    @staticmethod
    def _read_json_result(body: bytes, parser: _ChunkParser, opened: _OpenStream) -> None:
        """A 200 that is plain JSON: an error body, or a whole non-streamed completion."""
        try:
            payload = loads_exact(body)
        except ValueError:
            raise MalformedResponseError(detail="a JSON response was not valid JSON") from None
        if not isinstance(payload, Mapping):
            raise MalformedResponseError(detail="a JSON response was not an object")
        text, error = parser.feed_object(payload, message_key="message")
        if error is not None and not text:
            raise error
        if not text and payload.get("choices") is None:
            raise MalformedResponseError(detail="a JSON response had neither choices nor error")
        opened.queue(text, error)

    # ---- other endpoints -----------------------------------------------------------------

    @staticmethod
    def _auth(api_key: SecretStr) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key.get_secret_value()}"}

    async def _get_json(
        self,
        path: str,
        api_key: SecretStr | None,
        *,
        params: Mapping[str, str] | None = None,
        none_on_404: bool = False,
    ) -> Any:
        """``GET`` a JSON document; provider failures become ProviderError."""
        headers = self._auth(api_key) if api_key is not None else {}
        secret = api_key.get_secret_value() if api_key is not None else None
        try:
            response = await self._client.get(path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise _from_transport(exc) from None
        if response.status_code == 404 and none_on_404:
            return None
        if not response.is_success:
            raise error_from_response(
                response.status_code, response.content, response.headers, secret=secret
            )
        try:
            return loads_exact(response.content)
        except ValueError:
            raise MalformedResponseError(detail=f"GET {path}: not JSON") from None

    async def _list_models(self, api_key: SecretStr | None) -> list[Mapping[str, Any]]:
        payload = await self._get_json("models", api_key)
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, list):
            raise MalformedResponseError(detail="GET /models: no `data` list")
        return [item for item in data if isinstance(item, Mapping)]

    async def lookup_model(self, model_id: str, api_key: SecretStr | None) -> ModelInfo | None:
        """Find ``model_id`` in ``GET /models`` (OpenAI's list carries no pricing)."""
        for item in await self._list_models(api_key):
            if item.get("id") == model_id:
                name = item.get("name")
                context = item.get("context_length")
                return ModelInfo(
                    id=model_id,
                    name=name if isinstance(name, str) else None,
                    context_length=context if isinstance(context, int) else None,
                )
        return None

    async def check_key(self, api_key: SecretStr) -> KeyInfo:
        """A key is good when ``GET /models`` accepts it (401 → AuthenticationError)."""
        await self._get_json("models", api_key)
        return KeyInfo()

    async def get_generation(self, generation_id: str, api_key: SecretStr) -> GenerationInfo | None:
        """Generic OpenAI-compatible APIs have no per-generation stats."""
        return None
