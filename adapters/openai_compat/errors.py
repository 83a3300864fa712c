"""Provider failures → :mod:`adapters.errors` kinds: HTTP statuses, error payloads, transport.

Also what the retry loop needs to decide: ``Retry-After`` parsing and the backoff predicate.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

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
    "MAX_DETAIL_CHARS",
    "RETRY_AFTER_CAP",
    "cut_off",
    "error_from_payload",
    "error_from_response",
    "from_transport",
    "parse_retry_after",
    "retry_backoff",
    "scrub",
]

#: A ``Retry-After`` up to this many seconds is waited out; a longer one fails at once so the
#: user is told when to come back instead of watching a spinner.
RETRY_AFTER_CAP = 10.0
#: Provider messages are kept for logs, trimmed to this length.
MAX_DETAIL_CHARS = 500

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


def scrub(text: str | None, secret: str | None) -> str | None:
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
    """The taxonomy class for an HTTP-like status, with the facts that came with it."""
    kw: dict[str, Any] = {
        "status_code": status,
        "provider_code": code,
        "detail": message,
        "model": model,
    }
    if status == 400:
        return BadRequestError(**kw)
    if status == 401:
        return AuthenticationError(**kw)
    if status == 402:
        return InsufficientCreditsError(**kw)
    if status == 403:
        return ModerationError(**kw)
    if status == 404:
        return ModelNotFoundError(**kw)
    if status in (408, 504, 524):
        return RequestTimeoutError(**kw)
    if status == 429:
        return RateLimitedError(retry_after=retry_after, **kw)
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
        message=scrub(message, secret),
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


def from_transport(exc: httpx.HTTPError) -> ProviderError:
    """A failed connection or read, before any text: timeout or unavailable (both retryable)."""
    detail = f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS]
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(detail=detail)
    if isinstance(exc, httpx.DecodingError):
        return MalformedResponseError(detail=detail)
    return ProviderUnavailableError(unreachable=True, detail=detail)


def cut_off(cause: ProviderError, *, dropped: bool = False) -> CutOffError:
    """Wrap a failure that came after text: the partial answer stands, marked as cut off.

    ``dropped``: the transport broke (as opposed to the provider reporting an error).
    """
    if isinstance(cause, CutOffError):
        return cause
    detail = f"{cause.kind}: {cause.detail}" if cause.detail else cause.kind
    return CutOffError(
        cause="dropped" if dropped else cause.kind,
        status_code=cause.status_code,
        provider_code=cause.provider_code,
        detail=detail,
        model=cause.model,
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
