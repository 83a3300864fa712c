"""bot.core.messages: every provider error kind has its sentence, word for word.

The sentences are the ones users have seen since before errors became data; front-end tests
match parts of them, these pin them whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import adapters.errors as errors_module
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
    StreamDeadlineError,
)
from bot.core.messages import cut_off_notice, provider_sentence

GENERIC = "The model provider returned an error."

SENTENCES: list[tuple[ProviderError, str]] = [
    (ProviderError(), GENERIC),
    (
        AuthenticationError(status_code=401),
        "The provider rejected the API key; an admin can set a new one with /apikey.",
    ),
    (
        InsufficientCreditsError(status_code=402),
        "The provider account is out of credits (402); an admin needs to add credits "
        "or set another key with /apikey.",
    ),
    (
        ModerationError(status_code=403),
        "The provider refused this request (moderation or permissions, 403).",
    ),
    (RequestTimeoutError(), "The model took too long to answer; please try again."),
    (StreamDeadlineError(), "The model took too long to answer; please try again."),
    (RateLimitedError(), "The provider is rate limiting requests; please try again shortly."),
    (
        RateLimitedError(retry_after=120.0),
        "The provider is rate limiting requests; try again in 120 s.",
    ),
    (
        RateLimitedError(retry_after=0.2),
        "The provider is rate limiting requests; try again in 1 s.",
    ),
    (
        ProviderUnavailableError(status_code=502),
        "The model is down at the provider right now (502); please try again later.",
    ),
    (
        ProviderUnavailableError(status_code=503),
        "No provider can serve this model right now (503); please try again later.",
    ),
    (
        ProviderUnavailableError(status_code=500),
        "The model provider is unavailable right now (model down or no provider); "
        "please try again later.",
    ),
    (
        ProviderUnavailableError(unreachable=True),
        "Could not reach the model provider; please try again later.",
    ),
    (BadRequestError(status_code=400), "The provider refused the request as invalid."),
    (
        InvalidModelIdError(
            model="gpt-4o", provider="openrouter", forms=("author/slug", "author/slug:free")
        ),
        "`gpt-4o` is not an OpenRouter model id; ids look like `author/slug` or "
        "`author/slug:free`.",
    ),
    (
        ModelNotFoundError(status_code=404, model="nope/not-a-model"),
        "The provider does not know the model `nope/not-a-model`; see /models for the ones "
        "you can use.",
    ),
    (ModelNotFoundError(status_code=404), "The provider does not know this model."),
    (
        EndpointNotFoundError(provider="openrouter", url="http://host.test/api/v2/key"),
        "OpenRouter answered 404 at http://host.test/api/v2/key: check OPENROUTER_BASE_URL.",
    ),
    (
        # Credentials and a query never reach the sentence.
        EndpointNotFoundError(
            provider="fireworks", url="https://user:pw@FW.test:8443/v2/models?key=fw_secret#x"
        ),
        "Fireworks answered 404 at https://fw.test:8443/v2/models: check FIREWORKS_BASE_URL.",
    ),
    (
        EndpointNotFoundError(provider="local", url="http://[::1]:8080/v1/models"),
        "The provider answered 404 at http://[::1]:8080/v1/models: check its base URL.",
    ),
    (
        MalformedResponseError(),
        "The provider sent a response routerbot could not read; please try again.",
    ),
    (CutOffError(), "The answer was cut off by a provider error."),
    (
        CutOffError(cause="dropped"),
        "The answer was cut off: the connection to the provider dropped.",
    ),
    (CutOffError(cause="timeout"), "The answer was cut off: the model stopped responding."),
    (
        CutOffError(cause="malformed"),
        "The answer was cut off: the provider sent something unreadable.",
    ),
    (CutOffError(cause="unavailable"), "The answer was cut off by a provider error."),
]


@pytest.mark.parametrize(("error", "sentence"), SENTENCES, ids=lambda v: type(v).__name__)
def test_each_kind_has_its_exact_sentence(error: ProviderError, sentence: str) -> None:
    assert provider_sentence(error) == sentence


def _kinds(cls: type[ProviderError]) -> set[type[ProviderError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _kinds(sub)
    return found


def test_every_kind_in_the_taxonomy_is_covered() -> None:
    declared = {
        obj
        for obj in vars(errors_module).values()
        if isinstance(obj, type) and issubclass(obj, ProviderError)
    }
    assert declared <= _kinds(ProviderError)
    covered = {type(error) for error, _ in SENTENCES}
    assert declared == covered, "a kind without a pinned sentence"
    for error, sentence in SENTENCES:
        if type(error) is not ProviderError:
            assert sentence != GENERIC, f"{type(error).__name__} falls back to the generic one"


def test_kinds_keep_their_ledger_names_and_retry_class_attributes() -> None:
    expected = {
        ProviderError: ("provider_error", False),
        AuthenticationError: ("auth", False),
        InsufficientCreditsError: ("insufficient_credits", False),
        ModerationError: ("moderation", False),
        RequestTimeoutError: ("timeout", True),
        StreamDeadlineError: ("timeout", False),
        RateLimitedError: ("rate_limited", True),
        ProviderUnavailableError: ("unavailable", True),
        BadRequestError: ("bad_request", False),
        InvalidModelIdError: ("bad_request", False),
        ModelNotFoundError: ("model_not_found", False),
        EndpointNotFoundError: ("endpoint_not_found", False),
        MalformedResponseError: ("malformed", True),
        CutOffError: ("cut_off", False),
    }
    for cls, (kind, retryable) in expected.items():
        assert (cls.kind, cls.retryable) == (kind, retryable), cls.__name__
    for error, _ in SENTENCES:
        # Class facts stay on the class: nothing overrides them per instance.
        assert "retryable" not in vars(error) and "kind" not in vars(error)


@pytest.mark.parametrize(
    ("error", "notice"),
    [
        (
            CutOffError(cause="timeout"),
            "⚠ The answer was cut off: the model stopped responding.",
        ),
        (
            CutOffError(cause="dropped"),
            "⚠ The answer was cut off: the connection to the provider dropped.",
        ),
        (CutOffError(cause="rate_limited"), "⚠ The answer was cut off by a provider error."),
        # Not a CutOffError (adapters always wrap, but the notice must still read right).
        (
            ProviderUnavailableError(status_code=502),
            "⚠ The answer was cut off: The model is down at the provider right now (502); "
            "please try again later.",
        ),
    ],
)
def test_cut_off_notice(error: ProviderError, notice: str) -> None:
    assert cut_off_notice(error) == notice


def test_adapters_hold_no_sentences_for_users() -> None:
    root = Path(errors_module.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        for needle in ("/apikey", "please try", "The answer was cut off"):
            assert needle not in text, f"{path.name} speaks to users: {needle!r}"
