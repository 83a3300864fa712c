"""Provider error kinds turned into the one sentence a chat user is shown."""

from __future__ import annotations

from adapters.errors import ProviderError


def provider_sentence(error: ProviderError) -> str:
    return error.user_message


def cut_off_notice(error: ProviderError) -> str:
    """The line under a partial answer that says why it stops there."""
    text = error.user_message
    return (
        f"⚠ {text}"
        if text.startswith("The answer was cut off")
        else f"⚠ The answer was cut off: {text}"
    )
