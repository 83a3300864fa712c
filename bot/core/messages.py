"""The one place a provider error kind and its facts become the sentence a user reads.

Adapters raise kinds with facts (:mod:`adapters.errors`); front-ends show what the core hands
them. Each sentence is one short line a user can act on; none holds key material. Sentences
for the core's own failures live with those failures (:class:`bot.core.errors.UserFacingError`
carries its ``message``).
"""

from __future__ import annotations

from adapters.errors import (
    AuthenticationError,
    BadRequestError,
    CutOffError,
    EndpointNotFoundError,
    InsufficientCreditsError,
    InvalidModelIdError,
    MalformedResponseError,
    ModelNotFoundError,
    ModerationError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    RequestTimeoutError,
)
from adapters.registry import display_name, find_provider

__all__ = ["cut_off_notice", "provider_sentence"]

#: How every notice of a cut-off answer begins.
_CUT_OFF = "The answer was cut off"

_CUT_OFF_CAUSES = {
    "dropped": f"{_CUT_OFF}: the connection to the provider dropped.",
    RequestTimeoutError.kind: f"{_CUT_OFF}: the model stopped responding.",
    MalformedResponseError.kind: f"{_CUT_OFF}: the provider sent something unreadable.",
}


def provider_sentence(error: ProviderError) -> str:
    """One sentence for ``error``, safe to show in chat."""
    match error:
        case AuthenticationError():
            return "The provider rejected the API key; an admin can set a new one with /apikey."
        case InsufficientCreditsError():
            return (
                "The provider account is out of credits (402); an admin needs to add credits "
                "or set another key with /apikey."
            )
        case ModerationError():
            return "The provider refused this request (moderation or permissions, 403)."
        case RequestTimeoutError():
            return "The model took too long to answer; please try again."
        case RateLimitedError(retry_after=float() | int() as seconds):
            return (
                f"The provider is rate limiting requests; try again in {max(1, round(seconds))} s."
            )
        case RateLimitedError():
            return "The provider is rate limiting requests; please try again shortly."
        case ProviderUnavailableError(unreachable=True):
            return "Could not reach the model provider; please try again later."
        case ProviderUnavailableError(status_code=502):
            return "The model is down at the provider right now (502); please try again later."
        case ProviderUnavailableError(status_code=503):
            return "No provider can serve this model right now (503); please try again later."
        case ProviderUnavailableError():
            return (
                "The model provider is unavailable right now (model down or no provider); "
                "please try again later."
            )
        case InvalidModelIdError():
            return _invalid_model_id(error)
        case BadRequestError():
            return "The provider refused the request as invalid."
        case ModelNotFoundError(model=str() as model) if model:
            return (
                f"The provider does not know the model `{model}`; "
                "see /models for the ones you can use."
            )
        case ModelNotFoundError():
            return "The provider does not know this model."
        case EndpointNotFoundError():
            return _endpoint_not_found(error)
        case MalformedResponseError():
            return "The provider sent a response routerbot could not read; please try again."
        case CutOffError(cause=cause):
            return _CUT_OFF_CAUSES.get(cause, f"{_CUT_OFF} by a provider error.")
        case _:
            return "The model provider returned an error."


def cut_off_notice(error: ProviderError) -> str:
    """The warning under an answer that ``error`` cut short (its text so far stands)."""
    if isinstance(error, CutOffError):
        return f"⚠ {provider_sentence(error)}"
    # Adapters report a partial answer's failure as a CutOffError; anything else still says so.
    return f"⚠ {_CUT_OFF}: {provider_sentence(error)}"


def _invalid_model_id(error: InvalidModelIdError) -> str:
    name = display_name(error.provider)
    article = "an" if name[:1].lower() in "aeiou" else "a"
    forms = " or ".join(f"`{form}`" for form in error.forms)
    looks = f"; ids look like {forms}." if forms else "."
    return f"`{error.model}` is not {article} {name} model id{looks}"


def _endpoint_not_found(error: EndpointNotFoundError) -> str:
    provider = find_provider(error.provider)
    if provider is None:
        return f"The provider answered 404 at {error.url}: check its base URL."
    setting = provider.base_url_setting.upper()
    return f"{provider.display_name} answered 404 at {error.url}: check {setting}."
