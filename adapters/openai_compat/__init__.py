"""Chat over any OpenAI-compatible API: one pooled client, SSE streaming, errors, retries.

``OpenAICompatibleAdapter.stream_chat`` turns one ``POST /chat/completions`` with ``stream: true``
into ``TextDelta`` events followed by exactly one ``StreamFinished`` or ``StreamFailed`` (asked to,
it first announces the accepted generation: ``StreamAccepted``). It reads
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

The modules, one concern each:

    errors     statuses, error payloads and transport failures → kinds; Retry-After; backoff
    chunks     SSE chunk and ``usage`` parsing, exact decimals
    sse        server-sent events from the body's bytes (the ``data`` of each event)
    stream     the open stream: reading to ``[DONE]``, the answer's deadline, draining
    client     ``OpenAICompatibleAdapter``: the pooled client, opening with retries, streaming
    endpoints  the JSON ``GET`` endpoints beside chat (models, key, generation stats)
    transport  ``AiohttpTransport``: the bytes moved by aiohttp under httpx's API
"""

from __future__ import annotations

from adapters.openai_compat.chunks import ChunkParser, as_decimal, loads_exact, parse_usage
from adapters.openai_compat.client import (
    CONNECT_TIMEOUT,
    DEFAULT_LIMITS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_CONNECTIONS,
    POOL_TIMEOUT,
    READ_TIMEOUT,
    WRITE_TIMEOUT,
    OpenAICompatibleAdapter,
)
from adapters.openai_compat.errors import (
    RETRY_AFTER_CAP,
    error_from_payload,
    error_from_response,
    parse_retry_after,
    retry_backoff,
)
from adapters.openai_compat.stream import STREAM_DEADLINE

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

# The chunk parser under its name from before the split: a test patches it to simulate a bug.
_ChunkParser = ChunkParser
