"""Platform deliveries handled once: a retried or duplicated event is claimed in the shared
database, so exactly one process (of however many) does its work.

Claims only need to outlive the platform's retry window (Slack retries for about five
minutes), so older ones are pruned.
"""

from __future__ import annotations

from datetime import timedelta

from bot.core.deps import utcnow
from bot.core.ports import Store

#: A day is generous against Slack's five minutes of retries and keeps the table small.
RETENTION = timedelta(days=1)
#: How often a long-running process prunes old claims.
PRUNE_EVERY_SECONDS = 3600.0


async def claim(store: Store, platform: str, event_key: str) -> bool:
    """True for the first claim of ``event_key`` on ``platform``, on any process."""
    return await store.claim_event(platform, event_key)


async def prune(store: Store) -> int:
    """Forget claims older than :data:`RETENTION`; returns how many went."""
    async with store.transaction() as tx:
        return await tx.events.prune(utcnow() - RETENTION)
