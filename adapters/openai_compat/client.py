"""``OpenAICompatibleAdapter``: chat and lookups over one pooled httpx client, with retries.

``stream_chat`` opens the stream (retrying only before the first token), then turns it into
``TextDelta`` events followed by exactly one ``StreamFinished`` or ``StreamFailed``; asked to,
it first announces each accepted attempt's generation (``StreamAccepted``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import AsyncExitStack, aclosing
from typing import Any, ClassVar, Self

import httpx
import stamina

from adapters.base import (
    ChatRequest,
    StreamAccepted,
    StreamEvent,
    StreamFailed,
    StreamFinished,
    TextDelta,
)
from adapters.errors import MalformedResponseError, ProviderError
from adapters.openai_compat.chunks import ChunkParser, StreamState, loads_exact
from adapters.openai_compat.endpoints import JsonEndpoints
from adapters.openai_compat.errors import (
    cut_off,
    error_from_response,
    from_transport,
    retry_backoff,
)
from adapters.openai_compat.parts import message_json
from adapters.openai_compat.sse import aiter_sse
from adapters.openai_compat.stream import STREAM_DEADLINE, OpenStream

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_CONNECTIONS",
    "POOL_TIMEOUT",
    "READ_TIMEOUT",
    "WRITE_TIMEOUT",
    "OpenAICompatibleAdapter",
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

USER_AGENT = "routerbot"


class OpenAICompatibleAdapter(JsonEndpoints):
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
            messages=[message_json(m) for m in request.messages],
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
        body.update(self.richer_fields(request))
        return body

    def richer_fields(self, request: ChatRequest) -> dict[str, Any]:
        """Body fields for reasoning effort and web search, in this provider's dialect.

        OpenAI's ``reasoning_effort``; web search has no OpenAI-compatible form, so the core
        offers it only where an adapter overrides this (OpenRouter)."""
        if request.reasoning_effort is None:
            return {}
        return {"reasoning_effort": request.reasoning_effort}

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Yield ``TextDelta`` events, then exactly one ``StreamFinished`` or ``StreamFailed``
        (with ``request.announce_acceptance``, a ``StreamAccepted`` before any text).

        Never raises, except ``CancelledError``/``GeneratorExit``, which propagate after the
        response is closed.
        """
        states: list[StreamState] = []
        deadline = asyncio.get_running_loop().time() + self.stream_deadline
        opened: OpenStream | None = None
        try:
            async with aclosing(self._open_with_retries(request, states, deadline)) as steps:
                async for step in steps:
                    if isinstance(step, OpenStream):
                        opened = step
                    else:
                        yield step
        except ProviderError as exc:
            yield self._failed(exc, states, partial=False)
            return
        except Exception as exc:  # a bug must still end as an event, not a traceback
            logger.exception("unexpected failure opening a %s stream", self.name)
            yield self._failed(
                MalformedResponseError(detail=type(exc).__name__), states, partial=False
            )
            return
        assert opened is not None

        state = opened.state
        partial = False
        try:
            while True:
                try:
                    text = await opened.next_text()  # the first piece is already queued
                except ProviderError as exc:
                    error = cut_off(exc, dropped=opened.dropped) if partial else exc
                    yield self._failed(error, states, partial=partial)
                    return
                except Exception as exc:
                    logger.exception("unexpected failure reading a %s stream", self.name)
                    cause = MalformedResponseError(detail=type(exc).__name__)
                    yield self._failed(
                        cut_off(cause) if partial else cause, states, partial=partial
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
                citations=tuple(state.citations),
            )
        finally:
            await opened.aclose()

    @staticmethod
    def _failed(error: ProviderError, states: list[StreamState], *, partial: bool) -> StreamFailed:
        state = states[-1] if states else StreamState()
        logger.info("stream failed: kind=%s status=%s", error.kind, error.status_code)
        return StreamFailed(
            error=error,
            partial=partial,
            usage=state.usage,
            model_served=state.model_served,
            generation_id=state.generation_id,
            citations=tuple(state.citations),
        )

    async def _open_with_retries(
        self, request: ChatRequest, states: list[StreamState], deadline: float
    ) -> AsyncGenerator[StreamAccepted | OpenStream, None]:
        """Open the stream, retrying only before its first text; yields each attempt's
        ``StreamAccepted`` (when asked for) and, last, the open stream. Raises ProviderError
        when the last attempt failed.

        The announcement is yielded outside stamina's attempt block: a consumer that goes away
        there must not count as a failed attempt.
        """
        async for attempt in stamina.retry_context(
            on=retry_backoff,
            attempts=self.max_retries + 1,
            timeout=RETRY_TOTAL_TIMEOUT,
            wait_initial=RETRY_WAIT_INITIAL,
            wait_max=RETRY_WAIT_MAX,
        ):
            if attempt.num > 1:
                logger.info("retrying %s chat, attempt %d", self.name, attempt.num)
            state = StreamState()
            states.append(state)
            failure: ProviderError | None = None
            opened: OpenStream | None = None
            try:
                opened = await self._open(request, state, deadline)
                announce = request.announce_acceptance
                if announce and state.generation_id is not None:
                    announce = False
                    yield StreamAccepted(state.generation_id, request.model)
                first = await opened.next_text()
                if first is not None:
                    opened.queue(first)
                if announce:  # the id came with the first chunk, if at all
                    yield StreamAccepted(state.generation_id, request.model)
            except ProviderError as exc:
                failure = exc
            except BaseException:
                if opened is not None:
                    await opened.aclose()
                raise
            if failure is not None and opened is not None:
                await opened.aclose()
            with attempt:
                if failure is not None:
                    raise failure
            if failure is None:
                assert opened is not None
                yield opened
                return
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    async def _open(self, request: ChatRequest, state: StreamState, deadline: float) -> OpenStream:
        """Send the request and read the response's head (or its whole JSON body).

        Everything that fails here, and up to the first piece of text, has yielded no text
        yet, so it may be retried.
        """
        secret = request.api_key.get_secret_value()
        parser = ChunkParser(state, model=request.model, secret=secret)
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
                    opened = OpenStream(stack, state, parser, events=None, deadline=deadline)
                    self._read_json_result(await response.aread(), parser, opened)
                elif "text/event-stream" in content_type:
                    events = aiter_sse(response)
                    stack.push_async_callback(events.aclose)
                    opened = OpenStream(stack, state, parser, events=events, deadline=deadline)
                else:
                    raise MalformedResponseError(detail=f"unexpected content-type {content_type!r}")
            except httpx.HTTPError as exc:
                raise from_transport(exc) from None
        except BaseException:
            await stack.aclose()
            raise
        return opened

    @staticmethod
    def _read_json_result(body: bytes, parser: ChunkParser, opened: OpenStream) -> None:
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
