"""The provider's model catalogue: what it serves today, and what routerbot makes of it.

``cache`` keeps one snapshot of ``GET /models`` per process (refreshed in the background,
never on a chat's path); ``sync`` lets the allowlists follow it and seeds new workspaces;
``chat`` is what a chat takes from it (availability, today's price, the context to fit);
``discovery`` answers ``/models search`` and ``/models info``; ``texts`` holds their sentences.
"""

from bot.core.catalogue.cache import (
    FAILURE_BACKOFF,
    MAX_AGE,
    REFRESH_INTERVAL,
    ROUTING_VARIANTS,
    Allowlisted,
    Availability,
    Catalogue,
    ModelChange,
    ModelStatus,
    Snapshot,
    base_model_id,
    changes_for,
    stop_refresher,
)

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
