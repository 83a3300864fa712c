"""The one error taxonomy for provider failures: kinds with their facts, no sentences.

Every failure a provider can produce becomes one of these classes. An error carries facts only
(the HTTP status, the provider's code, a scrubbed ``detail`` for logs, the requested model, and
each kind's own facts below); the core turns a kind and its facts into the one sentence a user
reads (``bot.core.messages``). ``kind`` is the stable short name written to the usage ledger's
``error_kind`` column; ``retryable`` says whether the same request may be tried again (only
ever before the first token). Both are class attributes, never changed on an instance.

    class                            kind                  retry  when
    ProviderError                    provider_error               anything not below
    ├── AuthenticationError          auth                         401: the key is wrong or revoked
    ├── InsufficientCreditsError     insufficient_credits         402: the account is out of credit
    ├── ModerationError              moderation                   403: moderation, a guardrail or
    │                                                             a permission refused it
    ├── RequestTimeoutError          timeout               yes    408/504/524, connect or read
    │   │                                                         timeouts, a stream that hangs
    │   └── StreamDeadlineError      timeout               no     the answer did not end within
    │                                                             the stream deadline
    ├── RateLimitedError             rate_limited          yes    429; ``retry_after`` seconds
    ├── ProviderUnavailableError     unavailable           yes    5xx (model down, no provider);
    │                                                             refused or dropped connections
    │                                                             before the first token
    │                                                             (``unreachable``)
    ├── BadRequestError              bad_request                  400 and other 4xx: the request
    │   │                                                         itself was refused
    │   └── InvalidModelIdError      bad_request                  an id not in the provider's form
    │                                                             (``provider``, ``forms``)
    ├── ModelNotFoundError           model_not_found              the model id is unknown
    ├── EndpointNotFoundError        endpoint_not_found           404 where no model is looked up:
    │                                                             the base URL is not the provider's
    │                                                             API (``provider``, ``url``)
    ├── MalformedResponseError       malformed             yes    not the provider's protocol
    └── CutOffError                  cut_off                      the stream broke after text had
                                                                  arrived (partial kept; ``cause``)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CutOffError",
    "EndpointNotFoundError",
    "InsufficientCreditsError",
    "InvalidModelIdError",
    "MalformedResponseError",
    "ModelNotFoundError",
    "ModerationError",
    "ProviderError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "RequestTimeoutError",
    "StreamDeadlineError",
]


class ProviderError(Exception):
    """Base class: a provider failure and its facts. ``str()`` is a summary for logs."""

    #: Stable short name for logs, metrics and the usage ledger.
    kind: ClassVar[str] = "provider_error"
    #: Whether the same request may be tried again (only ever done before the first token).
    retryable: ClassVar[bool] = False
    #: The provider's ``error.metadata`` facts (scalars only; see adapters.error_facts).
    metadata: Mapping[str, object] = MappingProxyType({})

    def __init__(
        self,
        *,
        status_code: int | None = None,
        provider_code: str | None = None,
        detail: str | None = None,
        model: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.provider_code = provider_code
        # ``detail`` is the provider's own message, for logs; it never holds key material
        # because adapters only copy the ``error.message`` field of a response body, scrubbed.
        self.detail = detail
        #: The model the request asked for, where there was one.
        self.model = model
        super().__init__(self._summary())

    def _summary(self) -> str:
        status = f" {self.status_code}" if self.status_code is not None else ""
        return f"{self.kind}{status}: {self.detail}" if self.detail else f"{self.kind}{status}"


class AuthenticationError(ProviderError):
    kind = "auth"


class InsufficientCreditsError(ProviderError):
    kind = "insufficient_credits"


class ModerationError(ProviderError):
    kind = "moderation"


class RequestTimeoutError(ProviderError):
    kind = "timeout"
    retryable = True


class StreamDeadlineError(RequestTimeoutError):
    """The answer did not end within the stream deadline (a stream of keep-alive comments)."""

    # A retry would start past the same deadline.
    retryable = False


class RateLimitedError(ProviderError):
    kind = "rate_limited"
    retryable = True

    def __init__(
        self,
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        provider_code: str | None = None,
        detail: str | None = None,
        model: str | None = None,
    ) -> None:
        #: Seconds the provider asked us to wait (``Retry-After``), when it said.
        self.retry_after = retry_after
        super().__init__(
            status_code=status_code, provider_code=provider_code, detail=detail, model=model
        )


class ProviderUnavailableError(ProviderError):
    kind = "unavailable"
    retryable = True

    def __init__(
        self,
        *,
        unreachable: bool = False,
        status_code: int | None = None,
        provider_code: str | None = None,
        detail: str | None = None,
        model: str | None = None,
    ) -> None:
        #: True when no answer came at all: the connection was refused or dropped before the
        #: first token (otherwise the provider said it, with a 5xx).
        self.unreachable = unreachable
        super().__init__(
            status_code=status_code, provider_code=provider_code, detail=detail, model=model
        )


class BadRequestError(ProviderError):
    kind = "bad_request"


class InvalidModelIdError(BadRequestError):
    """``model`` is not in the provider's id form; refused without asking the provider."""

    def __init__(self, *, model: str, provider: str, forms: Sequence[str] = ()) -> None:
        #: Short name of the provider whose form it is (``openrouter``).
        self.provider = provider
        #: What the provider's ids look like (``author/slug``).
        self.forms = tuple(forms)
        super().__init__(model=model, detail="not a model id of this provider")


class ModelNotFoundError(ProviderError):
    kind = "model_not_found"


class EndpointNotFoundError(ProviderError):
    """A 404 from an endpoint every server of this API has (``GET /key``, ``GET /models``):
    the configured base URL is not the provider's API (a wrong path, another service). It
    says nothing about any model."""

    kind = "endpoint_not_found"

    def __init__(self, *, provider: str, url: str, detail: str | None = None) -> None:
        #: Short name of the adapter's provider (``openrouter``).
        self.provider = provider
        #: The URL that answered 404, without credentials or query.
        self.url = _bare_url(url)
        super().__init__(status_code=404, detail=detail)


class MalformedResponseError(ProviderError):
    kind = "malformed"
    retryable = True


class CutOffError(ProviderError):
    """The stream failed after text had already been delivered; the partial answer stands."""

    kind = "cut_off"

    def __init__(
        self,
        *,
        cause: str = ProviderError.kind,
        status_code: int | None = None,
        provider_code: str | None = None,
        detail: str | None = None,
        model: str | None = None,
    ) -> None:
        #: Why: ``dropped`` (the connection broke) or the kind of the failure that cut the
        #: answer off (``timeout``, ``malformed``, ``unavailable``, …).
        self.cause = cause
        super().__init__(
            status_code=status_code, provider_code=provider_code, detail=detail, model=model
        )


def _bare_url(url: str) -> str:
    """``url`` without user info, query or fragment: what may be shown and logged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
