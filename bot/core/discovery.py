"""``/models search`` and ``/models info``: the provider's catalogue, for anyone, with this
workspace's allowlist marked. The catalogue is fetched here only when the process has none
(or a stale one); a command waits for it, a chat never does."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core import catalogue_texts as texts
from bot.core.catalogue_sync import PROVIDER
from bot.core.replies import Invocation
from bot.core.service import PROVIDER_NAMES, ProviderService

__all__ = ["SEARCH_LIMIT", "info_reply", "search_reply"]

#: At most this many models in a search reply.
SEARCH_LIMIT = 10


async def search_reply(service: ProviderService, ctx: Invocation, words: Sequence[str]) -> str:
    catalogue = service.catalogue
    if catalogue is None or await catalogue.ensure() is None:
        return texts.CATALOGUE_UNREACHABLE
    found = catalogue.search(words, limit=SEARCH_LIMIT)
    allowed = {e.model_id for e in await service.list_models(ctx)}
    return texts.search_text(
        words, found, allowed, provider=PROVIDER_NAMES[PROVIDER], limit=SEARCH_LIMIT
    )


async def info_reply(service: ProviderService, ctx: Invocation, model_id: str) -> str:
    catalogue = service.catalogue
    if catalogue is None or await catalogue.ensure() is None:
        return texts.CATALOGUE_UNREACHABLE
    entries = {e.model_id: e for e in await service.list_models(ctx)}
    allowed = entries.get(model_id)
    return texts.info_text(
        model_id,
        catalogue.status(model_id),
        provider=PROVIDER_NAMES[PROVIDER],
        allowlisted=allowed is not None,
        is_default=allowed is not None and allowed.is_default,
        known_gone=catalogue.known_gone(model_id)
        or (allowed is not None and allowed.unavailable is not None),
    )
