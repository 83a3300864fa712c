"""The storage ports of spend: the usage ledger, and the budgets with their holds.

Part of :mod:`bot.core.ports` (which re-exports these names; import them from there), kept
apart only so that neither file outgrows one screenful of ideas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Only bot.core.ports reaches into storage; it re-exports the records.
    from bot.core.ports import (
        BudgetRow,
        ChannelSpend,
        LedgerRow,
        Standing,
        UsageEntry,
        UsageSummary,
        UsageTokens,
        UserSpend,
    )


class UsageRepo(Protocol):
    async def record(self, entry: UsageEntry) -> int:
        """Write one ledger row and its daily rollups; returns the row's id."""
        ...

    async def conversation_of_generation(
        self, workspace_id: int, generation_id: str
    ) -> tuple[bool, int | None]:
        """Whether this generation is on record, and the conversation it was recorded with."""
        ...

    async def summarize(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> UsageSummary: ...

    async def daily_spend(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        first_day: date | None,
        end_day: date | None,
        user_id: str | None = None,
    ) -> list[tuple[date, int]]:
        """Known spend per UTC day over ``[first_day, end_day)``, days with rows only: of a
        channel, of one person (``user_id``, everywhere in the workspace), or of the whole
        workspace."""
        ...

    async def summarize_user(
        self, workspace_id: int, user_id: str, *, since: datetime | None, until: datetime | None
    ) -> UsageSummary:
        """One person's spend (``by_model``, ``by_channel``; ``by_user`` holds only them)."""
        ...

    def stream(
        self, workspace_id: int, *, since: datetime | None, with_generation_id: bool = False
    ) -> AsyncIterator[LedgerRow]: ...

    async def correct_cost(
        self,
        workspace_id: int,
        usage_id: int,
        *,
        cost_nano: int | None,
        cost_source: str,
        tokens: UsageTokens | None = None,
    ) -> bool:
        """Correct one row's cost (and, with ``tokens``, its counts and served model), its
        rollups with it; False when there is no such row."""
        ...


class BudgetRepo(Protocol):
    """Limits are scoped ``(channel_id, user_id)``: see :class:`BudgetRow`."""

    async def lock(self, workspace_id: int) -> None:
        """Serialise budget checks of one workspace until this transaction ends (the
        transaction's first call)."""
        ...

    async def has_any(self, workspace_id: int) -> bool: ...

    async def applying(
        self, workspace_id: int, channel_id: str, user_id: str = ""
    ) -> list[BudgetRow]:
        """The limits a chat in ``channel_id`` by ``user_id`` meets: the workspace's, the
        channel's, then the person's own and the each-user limit (both, if both exist)."""
        ...

    async def all(self, workspace_id: int) -> list[BudgetRow]: ...

    async def get(
        self, workspace_id: int, channel_id: str, user_id: str = ""
    ) -> BudgetRow | None: ...

    async def set(
        self, workspace_id: int, channel_id: str, *, limit_nano: int, set_by: str, user_id: str = ""
    ) -> None:
        """Create or replace a limit; its notices may be given again this month."""
        ...

    async def clear(self, workspace_id: int, channel_id: str, user_id: str = "") -> bool: ...

    async def claim_notice(
        self, budget_id: int, month: str, *, level: int = 80, subject: str = ""
    ) -> bool:
        """True for the one caller that gives this notice (``level`` %, ``month``, for
        ``subject`` with an each-user limit); False for every later one."""
        ...

    async def hold(
        self,
        workspace_id: int,
        channel_id: str,
        *,
        amount_nano: int,
        now: datetime,
        ttl: timedelta,
        user_id: str = "",
        owner: str | None = None,
    ) -> int:
        """Hold until ``now + ttl``: with an ``owner``, a lease that process renews."""
        ...

    async def renew_holds(self, owner: str, ids: Sequence[int], until: datetime) -> None:
        """Extend these holds of ``owner`` to ``until``."""
        ...

    async def prune_lapsed(self, now: datetime) -> int:
        """Delete every workspace's holds that lapsed by ``now`` (they no longer count)."""
        ...

    async def release(self, workspace_id: int, hold_id: int) -> None: ...

    async def prune_holds(self, workspace_id: int, now: datetime) -> None: ...

    async def held(self, workspace_id: int, channel_id: str | None, now: datetime) -> int: ...

    async def spent_since(self, workspace_id: int, channel_id: str | None, first_day: date) -> int:
        """Known spend since ``first_day``, of the workspace or one channel."""
        ...

    async def standing(
        self, workspace_id: int, channel_id: str, user_id: str, first_day: date, now: datetime
    ) -> Standing:
        """Spend since ``first_day`` and live holds of the workspace, a channel, a person."""
        ...

    async def by_channel(
        self, workspace_id: int, first_day: date, now: datetime
    ) -> ChannelSpend: ...

    async def by_user(self, workspace_id: int, first_day: date, now: datetime) -> UserSpend: ...
