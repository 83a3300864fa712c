"""The core's ledger and budget repositories over one SQLAlchemy session: rows in, plain
records out (the usage ledger with its rollups, spend limits and their holds)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import fields
from datetime import date, datetime, timedelta

from storage import stores
from storage.models import Budget, UsageRecord
from storage.records import (
    BudgetRow,
    ChannelSpend,
    LedgerRow,
    Standing,
    UsageEntry,
    UsageSummary,
    UsageTokens,
    UserSpend,
)
from storage.sql_repos import SessionRepo


def _budget(row: Budget) -> BudgetRow:
    assert row.id is not None
    return BudgetRow(row.id, row.channel_id, row.limit_nano, row.user_id, row.set_by)


def ledger_row(row: UsageRecord) -> LedgerRow:
    assert row.id is not None
    return LedgerRow(
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        user_id=row.user_id,
        provider=row.provider,
        model_requested=row.model_requested,
        model_served=row.model_served,
        prompt_tokens=row.prompt_tokens,
        cached_tokens=row.cached_tokens,
        completion_tokens=row.completion_tokens,
        reasoning_tokens=row.reasoning_tokens,
        web_search_requests=row.web_search_requests,
        web_search_cost_nano=row.web_search_cost_nano,
        cost_nano=row.cost_nano,
        cost_source=row.cost_source,
        generation_id=row.generation_id,
        latency_ms=row.latency_ms,
        outcome=row.outcome,
        error_kind=row.error_kind,
        conversation_id=row.conversation_id,
        created_at=row.created_at,
        id=row.id,
    )


class SqlUsage(SessionRepo):
    async def record(self, entry: UsageEntry) -> int:
        # Every field of the record is a column of the same name.
        row = UsageRecord(**{f.name: getattr(entry, f.name) for f in fields(entry)})
        await stores.record_usage(self.session, record=row)
        assert row.id is not None
        return row.id

    async def conversation_of_generation(
        self, workspace_id: int, generation_id: str
    ) -> tuple[bool, int | None]:
        row = await stores.find_usage_by_generation(
            self.session, workspace_id=workspace_id, generation_id=generation_id
        )
        return (False, None) if row is None else (True, row.conversation_id)

    async def summarize(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> UsageSummary:
        return await stores.summarize_usage(
            self.session, workspace_id=workspace_id, channel_id=channel_id, since=since, until=until
        )

    async def summarize_user(
        self, workspace_id: int, user_id: str, *, since: datetime | None, until: datetime | None
    ) -> UsageSummary:
        return await stores.summarize_user(
            self.session, workspace_id=workspace_id, user_id=user_id, since=since, until=until
        )

    async def daily_spend(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        first_day: date | None,
        end_day: date | None,
        user_id: str | None = None,
    ) -> list[tuple[date, int]]:
        return await stores.daily_spend(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            first_day=first_day,
            end_day=end_day,
            user_id=user_id,
        )

    async def stream(
        self, workspace_id: int, *, since: datetime | None, with_generation_id: bool = False
    ) -> AsyncIterator[LedgerRow]:
        rows = stores.stream_usage(
            self.session,
            workspace_id=workspace_id,
            since=since,
            with_generation_id=with_generation_id,
        )
        async for row in rows:
            yield ledger_row(row)

    async def correct_cost(
        self,
        workspace_id: int,
        usage_id: int,
        *,
        cost_nano: int | None,
        cost_source: str,
        tokens: UsageTokens | None = None,
    ) -> bool:
        row = await stores.update_usage_cost(
            self.session,
            workspace_id=workspace_id,
            usage_id=usage_id,
            cost_nano=cost_nano,
            cost_source=cost_source,
            tokens=tokens,
        )
        return row is not None


class SqlBudgets(SessionRepo):
    async def lock(self, workspace_id: int) -> None:
        await stores.lock_budgets(self.session, workspace_id=workspace_id)

    async def has_any(self, workspace_id: int) -> bool:
        return await stores.has_budgets(self.session, workspace_id=workspace_id)

    async def applying(
        self, workspace_id: int, channel_id: str, user_id: str = ""
    ) -> list[BudgetRow]:
        rows = await stores.get_budgets(
            self.session, workspace_id=workspace_id, channel_id=channel_id, user_id=user_id
        )
        return [_budget(r) for r in rows]

    async def all(self, workspace_id: int) -> list[BudgetRow]:
        return [
            _budget(r) for r in await stores.list_budgets(self.session, workspace_id=workspace_id)
        ]

    async def get(self, workspace_id: int, channel_id: str, user_id: str = "") -> BudgetRow | None:
        row = await stores.get_budget(
            self.session, workspace_id=workspace_id, channel_id=channel_id, user_id=user_id
        )
        return _budget(row) if row is not None else None

    async def set(
        self, workspace_id: int, channel_id: str, *, limit_nano: int, set_by: str, user_id: str = ""
    ) -> None:
        await stores.set_budget(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            limit_nano=limit_nano,
            set_by=set_by,
            user_id=user_id,
        )

    async def clear(self, workspace_id: int, channel_id: str, user_id: str = "") -> bool:
        return await stores.clear_budget(
            self.session, workspace_id=workspace_id, channel_id=channel_id, user_id=user_id
        )

    async def claim_notice(
        self, budget_id: int, month: str, *, level: int = 80, subject: str = ""
    ) -> bool:
        return await stores.claim_notice(
            self.session, budget_id=budget_id, month=month, level=level, subject=subject
        )

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
        return await stores.add_reservation(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            amount_nano=amount_nano,
            now=now,
            ttl=ttl,
            user_id=user_id,
            owner=owner,
        )

    async def renew_holds(self, owner: str, ids: Sequence[int], until: datetime) -> None:
        await stores.renew_reservations(self.session, owner=owner, ids=ids, until=until)

    async def prune_lapsed(self, now: datetime) -> int:
        return await stores.prune_lapsed_reservations(self.session, now=now)

    async def release(self, workspace_id: int, hold_id: int) -> None:
        await stores.delete_reservation(
            self.session, workspace_id=workspace_id, reservation_id=hold_id
        )

    async def prune_holds(self, workspace_id: int, now: datetime) -> None:
        await stores.prune_reservations(self.session, workspace_id=workspace_id, now=now)

    async def held(self, workspace_id: int, channel_id: str | None, now: datetime) -> int:
        return await stores.reserved_sum(
            self.session, workspace_id=workspace_id, channel_id=channel_id, now=now
        )

    async def spent_since(self, workspace_id: int, channel_id: str | None, first_day: date) -> int:
        return await stores.spent_since(
            self.session, workspace_id=workspace_id, channel_id=channel_id, first_day=first_day
        )

    async def by_channel(self, workspace_id: int, first_day: date, now: datetime) -> ChannelSpend:
        spent, held = await stores.spend_by_channel(
            self.session, workspace_id=workspace_id, first_day=first_day, now=now
        )
        return ChannelSpend(spent, held)

    async def by_user(self, workspace_id: int, first_day: date, now: datetime) -> UserSpend:
        spent, held = await stores.spend_by_user(
            self.session, workspace_id=workspace_id, first_day=first_day, now=now
        )
        return UserSpend(spent, held)

    async def standing(
        self, workspace_id: int, channel_id: str, user_id: str, first_day: date, now: datetime
    ) -> Standing:
        return await stores.standing(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            user_id=user_id,
            first_day=first_day,
            now=now,
        )
