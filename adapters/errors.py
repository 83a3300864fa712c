"""The one error taxonomy for provider failures.

Every failure a provider can produce becomes one of these, each carrying a sentence a chat user
can act on. Front-ends render ``user_message`` and never a traceback.

    ProviderError
    ├── AuthenticationError          401: the key is wrong or revoked
    ├── InsufficientCreditsError     402: the account is out of credit
    ├── ModerationError              403: refused by moderation, a guardrail or a permission
    ├── RequestTimeoutError          408, connect/read timeouts, a stream that hangs
    ├── RateLimitedError             429 (carries ``retry_after`` seconds when known)
    ├── ProviderUnavailableError     5xx, refused or dropped connections before the first token
    ├── BadRequestError              400 and other 4xx: the request itself was refused
    ├── ModelNotFoundError           the model id is unknown to the provider
    ├── MalformedResponseError       the provider sent something that is not its protocol
    └── CutOffError                  the stream broke after text had arrived (partial kept)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class ProviderError(Exception):
    """Base class. ``user_message`` is one short sentence safe to show in chat."""

    default_message = "The model provider returned an error."
    #: Whether the same request may be tried again (only ever done before the first token).
    retryable = False
    #: The provider's ``error.metadata`` facts (scalars only; see adapters.error_facts).
    metadata: Mapping[str, object] = MappingProxyType({})

    def __init__(
        self,
        user_message: str | None = None,
        *,
        status_code: int | None = None,
        provider_code: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.user_message = user_message or self.default_message
        self.status_code = status_code
        self.provider_code = provider_code
        # ``detail`` is the provider's own message, for logs; it never holds key material
        # because adapters only copy the ``error.message`` field of a response body.
        self.detail = detail
        super().__init__(self.user_message)

    @property
    def kind(self) -> str:
        """Stable short name for logs, metrics and the usage ledger."""
        return _KIND_NAMES.get(type(self), "provider_error")


class AuthenticationError(ProviderError):
    default_message = "The provider rejected the API key; an admin can set a new one with /apikey."


class InsufficientCreditsError(ProviderError):
    default_message = (
        "The provider account is out of credits (402); an admin needs to add credits "
        "or set another key with /apikey."
    )


class ModerationError(ProviderError):
    default_message = "The provider refused this request (moderation or permissions, 403)."


class RequestTimeoutError(ProviderError):
    default_message = "The model took too long to answer; please try again."
    retryable = True


class RateLimitedError(ProviderError):
    default_message = "The provider is rate limiting requests; please try again shortly."
    retryable = True

    def __init__(
        self,
        user_message: str | None = None,
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        provider_code: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        if user_message is None:
            if retry_after is not None:
                seconds = max(1, round(retry_after))
                user_message = f"The provider is rate limiting requests; try again in {seconds} s."
            else:
                user_message = self.default_message
        super().__init__(
            user_message, status_code=status_code, provider_code=provider_code, detail=detail
        )


class ProviderUnavailableError(ProviderError):
    default_message = (
        "The model provider is unavailable right now (model down or no provider); "
        "please try again later."
    )
    retryable = True


class BadRequestError(ProviderError):
    default_message = "The provider refused the request as invalid."


class ModelNotFoundError(ProviderError):
    default_message = "The provider does not know this model."


class MalformedResponseError(ProviderError):
    default_message = "The provider sent a response routerbot could not read; please try again."
    retryable = True


class CutOffError(ProviderError):
    """The stream failed after text had already been delivered; the partial answer stands."""

    default_message = "The answer was cut off by a provider error."


_KIND_NAMES: dict[type[ProviderError], str] = {
    ProviderError: "provider_error",
    AuthenticationError: "auth",
    InsufficientCreditsError: "insufficient_credits",
    ModerationError: "moderation",
    RequestTimeoutError: "timeout",
    RateLimitedError: "rate_limited",
    ProviderUnavailableError: "unavailable",
    BadRequestError: "bad_request",
    ModelNotFoundError: "model_not_found",
    MalformedResponseError: "malformed",
    CutOffError: "cut_off",
}
