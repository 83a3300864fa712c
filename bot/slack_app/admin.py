"""Is this Slack user a workspace admin? ``users.info``, cached per (team, user) for minutes.

Concurrent checks for the same person share one ``users.info`` call. Failures are not cached:
the next command asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_app.errors import error_code

#: A demoted admin keeps their rights at most this long; a few minutes per SPEC.
ADMIN_CACHE_SECONDS = 300.0
_MAX_ENTRIES = 50_000


class AdminCheckFailed(Exception):
    """``users.info`` failed; the message is the sentence to show."""


def is_admin_user(user: dict[str, Any]) -> bool:
    if user.get("deleted"):
        return False
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


class AdminCache:
    def __init__(
        self,
        ttl: float = ADMIN_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[bool, float]] = {}
        self._pending: dict[tuple[str, str], asyncio.Task[bool]] = {}

    async def is_admin(self, client: AsyncWebClient, *, team_id: str, user_id: str) -> bool:
        key = (team_id, user_id)
        hit = self._entries.get(key)
        if hit is not None and hit[1] > self.clock():
            return hit[0]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._lookup(client, user_id))
            self._pending[key] = task
            task.add_done_callback(lambda _t: self._pending.pop(key, None))
        # shield: one caller going away must not cancel the lookup the others wait on.
        value = await asyncio.shield(task)
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (value, self.clock() + self.ttl)
        return value

    @staticmethod
    async def _lookup(client: AsyncWebClient, user_id: str) -> bool:
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            error = error_code(exc)
            raise AdminCheckFailed(
                f"routerbot could not check whether you are a workspace admin (Slack said "
                f"`{error}`); please try again in a moment."
            ) from None
        except (aiohttp.ClientError, TimeoutError):
            raise AdminCheckFailed(
                "routerbot could not reach Slack to check whether you are a workspace admin; "
                "please try again in a moment."
            ) from None
        user = response.get("user") or {}
        return is_admin_user(user)

    def forget(self, team_id: str, user_id: str) -> None:
        self._entries.pop((team_id, user_id), None)
