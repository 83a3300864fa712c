"""Autocomplete for the ``model`` option, served from a per-guild cache of the allowlist.

Autocomplete fires on every keystroke and must answer within 3 s, so the allowlist is read
from the database at most once per guild per ``ttl``; changes made through this process
invalidate it at once, the TTL bounds how stale other shard processes' changes can be.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from discord import app_commands

from bot.core.replies import Invocation
from bot.core.service import ModelEntry, ProviderService

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
        entries = await self._service.list_models(ctx)
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
