"""The open stream: text pieces read up to ``data: [DONE]``, under the answer's deadline.

After ``[DONE]`` the body is drained so the pooled connection can be reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx

from adapters.errors import MalformedResponseError, ProviderError, StreamDeadlineError
from adapters.openai_compat.chunks import ChunkParser, StreamState
from adapters.openai_compat.errors import from_transport

__all__ = ["DRAIN_TIMEOUT", "STREAM_DEADLINE", "OpenStream"]

logger = logging.getLogger(__name__)

#: Seconds a whole answer may take, from the request to its last chunk. The read timeout alone
#: cannot bound it: OpenRouter sends ``: OPENROUTER PROCESSING`` comments while a model works,
#: and a stream of nothing but comments would otherwise never end. Fifteen minutes is also how
#: long a chat's budget reservation lasts.
STREAM_DEADLINE = 900.0
#: After ``[DONE]``, how long to wait for the body's end so the connection returns to the pool.
DRAIN_TIMEOUT = 0.5


class OpenStream:
    """One successful-so-far response: owns it, yields text pieces, raises ProviderError."""

    def __init__(
        self,
        stack: AsyncExitStack,
        state: StreamState,
        parser: ChunkParser,
        events: AsyncIterator[str] | None,
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
                    data = await anext(self._events)
            except StopAsyncIteration:
                self._check_eof()
                return None
            except TimeoutError:
                if self.state.finish_reason is not None:
                    return None  # complete; only the usage chunk never came
                raise StreamDeadlineError(detail="the answer did not end in time") from None
            except httpx.HTTPError as exc:
                if self.state.finish_reason is not None:
                    # The answer was complete; only the usage chunk was lost.
                    logger.warning("stream dropped after finish_reason: %s", type(exc).__name__)
                    return None
                self.dropped = not isinstance(exc, httpx.TimeoutException)
                raise from_transport(exc) from None
            text, error = self._parser.feed(data)
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
