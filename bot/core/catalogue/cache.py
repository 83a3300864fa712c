"""The provider's model catalogue, held once per process and shared by every workspace.

:class:`Catalogue` caches the last ``GET /models`` (no key needed) as a :class:`Snapshot`.
Long-running front-ends call :meth:`Catalogue.run` to refresh it at start and every
:data:`REFRESH_INTERVAL` after; ``routerbot models sync`` calls :meth:`Catalogue.refresh`;
seeding a new workspace, ``/models search`` and ``/models info`` call :meth:`Catalogue.ensure`,
which fetches only when the process has no (fresh) snapshot. However many workspaces and
chats ask at once, a refresh is one request: callers that arrive while one is in flight wait
for it (single flight), and after a failure nobody retries for :data:`FAILURE_BACKOFF`.
A chat never waits for the catalogue: it reads :meth:`Catalogue.status` of what is cached.

It answers, for a model id: is it served, gone (its vendor retired it: it left the list, or
a chat was answered 404 "No endpoints found"), past its ``expiration_date``, or unknown (no
snapshot; or a ``~author/…-latest`` alias the list does not show, which is not evidence of
anything). Routing variants (``:nitro``, ``:floor``, ``:online``, ``:exacto``) are their base
model; ``:free`` variants are rows of their own and come and go alone.

And it compares an allowlist with the snapshot (:func:`changes_for`) for the sync: new
prices, models gone or expired, models back. It holds no database rows; fetch and clock are
injected, so it is tested without a network or a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from adapters.base import ModelPricing
from adapters.catalogue import CatalogueEntry

__all__ = [
    "FAILURE_BACKOFF",
    "MAX_AGE",
    "REFRESH_INTERVAL",
    "ROUTING_VARIANTS",
    "Allowlisted",
    "Availability",
    "Catalogue",
    "ModelChange",
    "ModelStatus",
    "Snapshot",
    "base_model_id",
    "changes_for",
    "stop_refresher",
]

log = logging.getLogger(__name__)

#: How often a long-running process refreshes (the spec asks for at least daily).
REFRESH_INTERVAL = timedelta(hours=12)
#: A snapshot older than this is stale: ``ensure`` fetches a new one.
MAX_AGE = timedelta(hours=24)
#: After a failed fetch, nobody asks again for this long (a down provider is not hammered).
FAILURE_BACKOFF = timedelta(minutes=5)
#: Suffixes that choose a provider for a model; OpenRouter lists only the base model.
ROUTING_VARIANTS = ("nitro", "floor", "online", "exacto")

Availability = Literal["served", "gone", "expired", "unknown"]
Fetch = Callable[[], Awaitable[Sequence[CatalogueEntry]]]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def base_model_id(model_id: str) -> str:
    """The listed model behind a routing variant (``a/b:nitro`` → ``a/b``); else the id."""
    base, _, variant = model_id.partition(":")
    return base if variant in ROUTING_VARIANTS else model_id


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One ``GET /models``: entries by id, and when (naive UTC) it was fetched."""

    entries: Mapping[str, CatalogueEntry]
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class ModelStatus:
    availability: Availability
    #: The catalogue's entry for the id (for a variant, its base model's).
    entry: CatalogueEntry | None = None


class Catalogue:
    """The cached catalogue of one provider. See the module docstring."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        clock: Callable[[], datetime] = _utcnow,
        max_age: timedelta = MAX_AGE,
        failure_backoff: timedelta = FAILURE_BACKOFF,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._max_age = max_age
        self._failure_backoff = failure_backoff
        self._snapshot: Snapshot | None = None
        self._inflight: asyncio.Task[Snapshot | None] | None = None
        self._failed_at: datetime | None = None
        #: Ids a chat was refused for ("No endpoints found"), until a fresh list says again.
        self._refused: set[str] = set()
        #: Ids that left the list while this process watched.
        self._gone: set[str] = set()
        #: Successful fetches, for logs and tests.
        self.fetches = 0

    # -- the snapshot -----------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    @property
    def stale(self) -> bool:
        """No snapshot, or one older than ``max_age``."""
        return self._snapshot is None or self._clock() - self._snapshot.fetched_at > self._max_age

    async def refresh(self) -> Snapshot | None:
        """Fetch now (or join the fetch in flight); the new snapshot, or ``None`` when the
        provider could not be asked (the old snapshot, if any, stays)."""
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._load())
        task = self._inflight
        # A caller that gives up (a timeout) must not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    async def ensure(self) -> Snapshot | None:
        """The snapshot, fetched first when there is none or it is stale, unless a fetch
        failed less than ``failure_backoff`` ago. A caller that stops waiting (a timeout)
        leaves the fetch going for the others."""
        if not self.stale:
            return self._snapshot
        if self._inflight is None and self._failed_recently():
            return self._snapshot
        return await self.refresh() or self._snapshot

    def _failed_recently(self) -> bool:
        return (
            self._failed_at is not None and self._clock() - self._failed_at < self._failure_backoff
        )

    async def _load(self) -> Snapshot | None:
        try:
            entries = await self._fetch()
        except Exception as exc:
            self._failed_at = self._clock()
            log.warning("could not fetch the model catalogue: %s: %s", type(exc).__name__, exc)
            return None
        finally:
            self._inflight = None
        previous = self._snapshot
        snapshot = Snapshot({e.id: e for e in entries}, self._clock())
        if previous is not None:
            self._gone |= set(previous.entries) - set(snapshot.entries)
        self._gone -= set(snapshot.entries)
        self._refused -= set(snapshot.entries)  # a fresh list decides again
        self._snapshot = snapshot
        self._failed_at = None
        self.fetches += 1
        log.info("model catalogue refreshed: %d models", len(snapshot.entries))
        return snapshot

    async def run(
        self,
        *,
        interval: timedelta = REFRESH_INTERVAL,
        on_refresh: Callable[[Snapshot], Awaitable[object]] | None = None,
    ) -> None:
        """Refresh now and every ``interval`` (after a failure, every ``failure_backoff``),
        handing each new snapshot to ``on_refresh``; until cancelled."""
        while True:
            snapshot = await self.refresh()
            if snapshot is not None and on_refresh is not None:
                try:
                    await on_refresh(snapshot)
                except Exception:
                    log.exception("applying the refreshed catalogue failed")
            wait = interval if snapshot is not None else self._failure_backoff
            await asyncio.sleep(wait.total_seconds())

    # -- one model --------------------------------------------------------------------------

    def entry(self, model_id: str) -> CatalogueEntry | None:
        """The listed entry for an id or its routing variant's base model."""
        if self._snapshot is None:
            return None
        entries = self._snapshot.entries
        return entries.get(model_id) or entries.get(base_model_id(model_id))

    def status(self, model_id: str, *, today: date | None = None) -> ModelStatus:
        """What the cached catalogue says of ``model_id``; never fetches."""
        if model_id in self._refused:
            return ModelStatus("gone")
        if self._snapshot is None:
            return ModelStatus("unknown")
        entry = self.entry(model_id)
        if entry is None:
            if model_id.startswith("~"):
                return ModelStatus("unknown")  # an alias the list leaves out proves nothing
            return ModelStatus("gone")
        today = today or self._clock().date()
        if entry.expiration_date is not None and entry.expiration_date < today:
            return ModelStatus("expired", entry)
        return ModelStatus("served", entry)

    def known_gone(self, model_id: str) -> bool:
        """Whether this process saw ``model_id`` leave the list or be refused by a chat."""
        return model_id in self._refused or base_model_id(model_id) in self._gone

    def mark_refused(self, model_id: str) -> None:
        """A chat was answered "No endpoints found for <id>": gone until a list shows it."""
        self._refused.add(model_id)

    def mark_served(self, model_id: str) -> None:
        """The provider just confirmed it serves ``model_id`` (``/models add``)."""
        self._refused.discard(model_id)
        self._gone.discard(base_model_id(model_id))

    def pricing(self, model_id: str) -> ModelPricing | None:
        """The current list price, where the catalogue states one."""
        entry = self.entry(model_id)
        if entry is None or entry.pricing.input_per_1m is None:
            return None
        return entry.pricing.as_model_pricing()

    # -- discovery --------------------------------------------------------------------------

    def search(self, words: Sequence[str], *, limit: int = 10) -> list[CatalogueEntry]:
        """Up to ``limit`` entries whose id or name contains every word (any case): exact
        ids first, then ids that contain every word, then the newest."""
        if self._snapshot is None:
            return []
        needles = [w.lower() for w in words if w.strip()]
        if not needles:
            return []
        joined = " ".join(needles)
        found = []
        for entry in self._snapshot.entries.values():
            model_id = entry.id.lower()
            haystack = f"{model_id} {(entry.name or '').lower()}"
            if all(n in haystack for n in needles):
                found.append(entry)

        def order(entry: CatalogueEntry) -> tuple[bool, bool, float, str]:
            model_id = entry.id.lower()
            created = entry.created.timestamp() if entry.created is not None else 0.0
            in_id = all(n in model_id for n in needles)
            return (model_id != joined, not in_id, -created, model_id)

        found.sort(key=order)
        return found[:limit]


# -- the allowlist against the catalogue (routerbot models sync) ------------------------------


@dataclass(frozen=True, slots=True)
class Allowlisted:
    """What the sync needs of one allowlisted model."""

    model_id: str
    pricing: ModelPricing
    #: Why routerbot marked it unavailable (``gone``, ``expired``, ``refused``), if it did.
    unavailable: str | None = None
    #: When the provider last confirmed it (``/models add``): a snapshot fetched before that
    #: cannot say the model is gone.
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ModelChange:
    """One difference between an allowlisted model and the catalogue."""

    model_id: str
    kind: Literal["price", "unavailable", "available"]
    old: ModelPricing | None = None
    new: ModelPricing | None = None
    #: ``unavailable``: ``gone`` or ``expired``.
    reason: str | None = None


def _price_changed(old: ModelPricing, new: ModelPricing) -> bool:
    pairs = (
        (old.input_per_1m, new.input_per_1m),
        (old.output_per_1m, new.output_per_1m),
        (old.cached_input_per_1m, new.cached_input_per_1m),
    )
    # A price the catalogue does not state is not a change (the stored one stays).
    return any(b is not None and a != b for a, b in pairs)


def changes_for(
    model: Allowlisted, catalogue: Catalogue, *, today: date | None = None
) -> list[ModelChange]:
    """How ``model`` differs from the cached catalogue: nothing when there is no snapshot."""
    snapshot = catalogue.snapshot
    if snapshot is None:
        return []
    status = catalogue.status(model.model_id, today=today)
    if status.availability == "unknown":
        return []
    if status.availability in ("gone", "expired"):
        confirmed_later = (
            model.confirmed_at is not None and model.confirmed_at > snapshot.fetched_at
        )
        if model.unavailable is not None or (status.availability == "gone" and confirmed_later):
            return []
        return [ModelChange(model.model_id, "unavailable", reason=status.availability)]
    changes: list[ModelChange] = []
    if model.unavailable is not None:
        changes.append(ModelChange(model.model_id, "available"))
    new = catalogue.pricing(model.model_id)
    if new is not None and _price_changed(model.pricing, new):
        old = model.pricing
        merged = ModelPricing(
            new.input_per_1m if new.input_per_1m is not None else old.input_per_1m,
            new.output_per_1m if new.output_per_1m is not None else old.output_per_1m,
            new.cached_input_per_1m
            if new.cached_input_per_1m is not None
            else old.cached_input_per_1m,
        )
        changes.append(ModelChange(model.model_id, "price", model.pricing, merged))
    return changes


async def stop_refresher(task: asyncio.Task[None] | None) -> None:
    """Stop a refresher started with ``asyncio.create_task(catalogue.run(...))``."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
