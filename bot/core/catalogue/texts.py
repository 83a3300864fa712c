"""The sentences of the catalogue: a retired model, what a 403 or a too-long prompt means,
earlier turns left out, ``/models search`` and ``/models info``, and the allowlist's notes.

These are user sentences; they move next to ``bot/core/messages.py`` when the core is
reshaped. Each error is one sentence that says what the reader (or an admin) can do.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from adapters.catalogue import CatalogueEntry
from adapters.error_facts import ForbiddenReason
from bot.core.catalogue import Catalogue, ModelStatus
from bot.core.format import format_price

__all__ = [
    "CATALOGUE_UNREACHABLE",
    "allowlist_note",
    "cannot_add_retired",
    "context_overflow",
    "forbidden",
    "format_context",
    "info_text",
    "no_longer_available",
    "search_text",
    "turns_left_out",
]

CATALOGUE_UNREACHABLE = (
    "The provider's model catalogue cannot be reached right now; please try again in a few minutes."
)


def format_context(tokens: int | None) -> str:
    """``200K``, ``1M``, ``1.5M`` tokens; ``?`` when unknown."""
    if tokens is None:
        return "?"
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}".removesuffix(".0") + "M"
    if tokens >= 1_000:
        return f"{tokens // 1_000:,}K"
    return str(tokens)


def no_longer_available(model_id: str, provider: str, *, expired_on: date | None = None) -> str:
    """A chat with a model its vendor retired: never "unknown", always what an admin can do."""
    why = f" (its end date, {expired_on:%Y-%m-%d}, has passed)" if expired_on else ""
    return (
        f"`{model_id}` is no longer available at {provider}{why}; an admin can pick another "
        f"default with /models default <id> (see /models) and take it off with "
        f"/models remove {model_id}."
    )


def cannot_add_retired(model_id: str, provider: str) -> str:
    return (
        f"`{model_id}` is no longer available at {provider}, so it was not added; "
        "/models search <words> finds what it serves today."
    )


def forbidden(reason: ForbiddenReason, provider: str) -> str:
    """A 403, by what refused it."""
    if reason == "key_limit":
        return (
            f"The {provider} API key has reached its spending limit; an admin can raise the "
            f"limit at {provider} or set another key with /apikey."
        )
    if reason == "budget_limit":
        return (
            f"A budget set at {provider} for this key (a guardrail or workspace budget) is spent "
            f"for now; an admin can raise it at {provider}."
        )
    if reason == "guardrail":
        return (
            f"A guardrail at {provider} on this key blocked the request (allowed models or "
            f"providers, or a content rule); an admin can check the key's guardrails at "
            f"{provider}."
        )
    return (
        f"{provider}'s moderation refused this request (403); rephrase it, or ask with another "
        "model."
    )


def context_overflow(model_id: str, limit: int | None) -> str:
    size = f" ({limit:,} tokens)" if limit else ""
    return (
        f"This conversation is longer than `{model_id}` can read{size}; start a new one with "
        "/chat, or pick a model with a longer context (see /models)."
    )


def turns_left_out(model_id: str, context_length: int) -> str:
    return (
        f"Earlier turns of this conversation were left out: they no longer fit `{model_id}`'s "
        f"context of {context_length:,} tokens."
    )


def _prices(entry: CatalogueEntry) -> str:
    p = entry.pricing
    return f"{format_price(p.input_per_1m)} / {format_price(p.output_per_1m)}"


def search_text(
    words: Sequence[str],
    entries: Sequence[CatalogueEntry],
    allowlisted: Collection[str],
    *,
    provider: str,
    limit: int,
) -> str:
    shown = " ".join(words)
    if not entries:
        return f"No model in {provider}'s catalogue matches `{shown}`; try fewer or shorter words."
    lines = [f"{provider} models matching `{shown}` (USD per 1M tokens, in / out):"]
    for e in entries:
        allowed = "allowed here" if e.id in allowlisted else "not on the allowlist"
        lines.append(
            f"• `{e.id}` {_prices(e)} · {format_context(e.context_length)} context · {allowed}"
        )
    if len(entries) >= limit:
        lines.append(f"Showing the first {limit}; add words to narrow it down.")
    lines.append("/models info <id> tells more about one.")
    return "\n".join(lines)


def info_text(
    model_id: str,
    status: ModelStatus,
    *,
    provider: str,
    allowlisted: bool,
    is_default: bool,
    known_gone: bool,
) -> str:
    entry = status.entry
    if entry is None:
        if known_gone or (status.availability == "gone" and allowlisted):
            return no_longer_available(model_id, provider)
        return (
            f"`{model_id}` is not in {provider}'s catalogue today; /models search <words> "
            "finds the models it serves."
        )
    p = entry.pricing
    title = f"`{model_id}`" + (f" — {entry.name}" if entry.name else "")
    price = f"• price: {_prices(entry)} per 1M tokens (in / out)"
    if p.cached_input_per_1m is not None:
        price += f", cached input {format_price(p.cached_input_per_1m)}"
    if p.web_search_per_request:
        price += f", web search {format_price(p.web_search_per_request)} each"
    lines = [title, price]
    if entry.context_length is not None:
        lines.append(f"• context: {entry.context_length:,} tokens")
    if entry.input_modalities:
        lines.append(f"• input: {', '.join(entry.input_modalities)}")
    if entry.alias_target:
        lines.append(f"• follows the newest of its family, today `{entry.alias_target}`")
    if entry.expiration_date is not None:
        when = "ended" if status.availability == "expired" else "ends"
        lines.append(f"• availability {when} {entry.expiration_date:%Y-%m-%d}")
    if entry.id != model_id:
        lines.append(f"• a variant of `{entry.id}`, priced as listed for it")
    if allowlisted:
        lines.append("• on this workspace's allowlist" + (" (the default)" if is_default else ""))
    else:
        lines.append(f"• not on the allowlist; an admin can add it with /models add {model_id}")
    return "\n".join(lines)


def allowlist_note(
    catalogue: Catalogue | None, model_id: str, unavailable: str | None, provider: str
) -> str:
    """What ``/models`` adds after an allowlisted model: gone, or until when it is served.

    Gone is what the allowlist row says (the sync, the seed or a refused chat marked it): a
    model missing from this process's snapshot may have been added after it was fetched.
    """
    status = catalogue.status(model_id) if catalogue is not None else ModelStatus("unknown")
    if unavailable is not None or status.availability == "expired":
        return f" — no longer available at {provider}"
    entry = status.entry
    if entry is not None and entry.expiration_date is not None:
        return f" — available until {entry.expiration_date:%Y-%m-%d}"
    return ""
