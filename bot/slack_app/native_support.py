"""The memory of where Slack refused native streaming lately, so answers there go straight to
``chat.update``; and which ``chat.startStream`` errors count as such a refusal."""

from __future__ import annotations

import time
from collections.abc import Callable

#: ``chat.startStream`` errors meaning the whole workspace (app, token, plan) cannot stream.
TEAM_UNAVAILABLE = frozenset(
    {
        "unknown_method",
        "not_allowed_token_type",
        "missing_scope",
        "feature_not_enabled",
        "not_enabled",
    }
)
#: ``chat.startStream`` errors tied to the conversation (its type, what it requires).
CHANNEL_UNAVAILABLE = frozenset(
    {
        "method_not_supported_for_channel_type",
        "channel_type_not_supported",
        "invalid_arguments",
    }
)
NATIVE_UNAVAILABLE = TEAM_UNAVAILABLE | CHANNEL_UNAVAILABLE
#: How long a refusal is remembered.
REMEMBER_SECONDS = 3600.0


class NativeSupport:
    """Where Slack refused native streaming lately; answers there use ``chat.update`` directly.

    A refusal about the workspace (method, token type, scope, feature) is remembered for the
    team; one about the conversation (its type, its arguments) for that channel only.
    """

    def __init__(
        self, ttl: float = REMEMBER_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._until: dict[str, float] = {}

    def available(self, team_id: str, channel: str) -> bool:
        now = self.clock()
        for key in (team_id, f"{team_id}:{channel}"):
            until = self._until.get(key)
            if until is None:
                continue
            if until > now:
                return False
            del self._until[key]
        return True

    def refuse(self, team_id: str, channel: str, error: str) -> None:
        key = team_id if error in TEAM_UNAVAILABLE else f"{team_id}:{channel}"
        now = self.clock()
        if len(self._until) > 10_000:
            self._until = {k: t for k, t in self._until.items() if t > now}
        self._until[key] = now + self.ttl
