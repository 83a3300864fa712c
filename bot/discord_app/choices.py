"""Autocomplete for the ``model`` option, served from a per-guild cache of the allowlist; and
for ``/models add``, from the process's cached catalogue.

Autocomplete fires on every keystroke and must answer within 3 s, so the allowlist is read
from the database at most once per guild per ``ttl``; changes made through this process
invalidate it at once, the TTL bounds how stale other shard processes' changes can be. The
catalogue is never fetched for a keystroke: without a snapshot there are no suggestions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from discord import app_commands

from adapters.catalogue import CatalogueEntry
from bot.core.allowlist import ModelEntry
from bot.core.catalogue import Catalogue
from bot.core.format import format_price
from bot.core.replies import Invocation
from bot.core.service import ProviderService

MAX_CHOICES = 25
MAX_CHOICE_LENGTH = 100


class ModelChoices:
    def __init__(
        self,
        service: ProviderService,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, list[ModelEntry]]] = {}

    def invalidate(self, workspace_id: str) -> None:
        self._cache.pop(workspace_id, None)

    async def entries(self, ctx: Invocation) -> list[ModelEntry]:
        cached = self._cache.get(ctx.workspace_id)
        now = self._clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        entries = await self._service.allowlist.list_models(ctx)
        self._cache[ctx.workspace_id] = (now + self._ttl, entries)
        return entries

    async def choices(self, ctx: Invocation, current: str) -> list[app_commands.Choice[str]]:
        return rank(await self.entries(ctx), current)


def rank(entries: list[ModelEntry], current: str) -> list[app_commands.Choice[str]]:
    """Ids containing what was typed, prefix matches and the default first, at most 25."""
    needle = current.strip().lower()
    # A choice's value is limited to 100 characters too; longer ids can still be typed.
    usable = [e for e in entries if len(e.model_id) <= MAX_CHOICE_LENGTH]
    matches = [e for e in usable if needle in e.model_id.lower()]

    def order(entry: ModelEntry) -> tuple[bool, bool, str]:
        lowered = entry.model_id.lower()
        slug = lowered.split("/", 1)[-1]
        prefix = lowered.startswith(needle) or slug.startswith(needle)
        return (not prefix, not entry.is_default, lowered)

    matches.sort(key=order)
    return [
        app_commands.Choice(name=_label(entry), value=entry.model_id)
        for entry in matches[:MAX_CHOICES]
    ]


def _label(entry: ModelEntry) -> str:
    suffix = " (default)" if entry.is_default else ""
    if entry.unavailable is not None:
        suffix += " (no longer available)"
    if len(entry.model_id) + len(suffix) > MAX_CHOICE_LENGTH:
        return entry.model_id[:MAX_CHOICE_LENGTH]
    return entry.model_id + suffix


def catalogue_choices(catalogue: Catalogue | None, current: str) -> list[app_commands.Choice[str]]:
    """Catalogue models matching every word typed (the newest first when nothing is typed),
    at most 25, each named with its prices."""
    snapshot = catalogue.snapshot if catalogue is not None else None
    if catalogue is None or snapshot is None:
        return []
    words = current.split()
    if words:
        found = catalogue.search(words, limit=MAX_CHOICES * 2)
    else:
        found = sorted(
            snapshot.entries.values(),
            key=lambda e: e.created.timestamp() if e.created is not None else 0.0,
            reverse=True,
        )
    usable = [e for e in found if len(e.id) <= MAX_CHOICE_LENGTH]
    return [app_commands.Choice(name=_catalogue_label(e), value=e.id) for e in usable[:MAX_CHOICES]]


def _catalogue_label(entry: CatalogueEntry) -> str:
    p = entry.pricing
    label = f"{entry.id} · {format_price(p.input_per_1m)} / {format_price(p.output_per_1m)} per 1M"
    return label if len(label) <= MAX_CHOICE_LENGTH else entry.id
