"""``/models search`` and ``/models info``: the provider's catalogue, for anyone, with this
workspace's allowlist marked. The catalogue is fetched here only when the process has none
(or a stale one); a command waits for it, a chat never does."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.registry import display_name
from bot.core.allowlist import ModelEntry
from bot.core.catalogue import Catalogue, texts
from bot.core.catalogue.sync import PROVIDER

__all__ = ["SEARCH_LIMIT", "info_reply", "search_reply"]

#: At most this many models in a search reply.
SEARCH_LIMIT = 10


async def search_reply(
    catalogue: Catalogue | None, allowlist: Sequence[ModelEntry], words: Sequence[str]
) -> str:
    if catalogue is None or await catalogue.ensure() is None:
        return texts.CATALOGUE_UNREACHABLE
    found = catalogue.search(words, limit=SEARCH_LIMIT)
    allowed = {e.model_id for e in allowlist}
    return texts.search_text(
        words, found, allowed, provider=display_name(PROVIDER), limit=SEARCH_LIMIT
    )


async def info_reply(
    catalogue: Catalogue | None, allowlist: Sequence[ModelEntry], model_id: str
) -> str:
    if catalogue is None or await catalogue.ensure() is None:
        return texts.CATALOGUE_UNREACHABLE
    allowed = next((e for e in allowlist if e.model_id == model_id), None)
    return texts.info_text(
        model_id,
        catalogue.status(model_id),
        provider=display_name(PROVIDER),
        allowlisted=allowed is not None,
        is_default=allowed is not None and allowed.is_default,
        known_gone=catalogue.known_gone(model_id)
        or (allowed is not None and allowed.unavailable is not None),
    )
