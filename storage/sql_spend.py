"""The spend repositories over one SQLAlchemy session: the usage ledger and the budgets with
their holds. Plain records in and out, like ``storage.sql_repos``, in the unit of work's
transaction (see ``storage.sql_store``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta

from storage import stores
from storage.models import Budget, UsageRecord
from storage.records import (
    BudgetRow,
    ChannelSpend,
    LedgerRow,
    UsageEntry,
    UsageSummary,
    UsageTokens,
)
from storage.sql_repos import SessionRepo

__all__ = ["SqlBudgets", "SqlUsage", "ledger_row"]


def _budget(row: Budget) -> BudgetRow:
    assert row.id is not None
    return BudgetRow(row.id, row.channel_id, row.limit_nano, row.notified_month)


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
        row = await stores.record_usage(
            self.session,
            record=UsageRecord(
                workspace_id=entry.workspace_id,
                channel_id=entry.channel_id,
                user_id=entry.user_id,
                provider=entry.provider,
                model_requested=entry.model_requested,
                model_served=entry.model_served,
                prompt_tokens=entry.prompt_tokens,
                cached_tokens=entry.cached_tokens,
                completion_tokens=entry.completion_tokens,
                reasoning_tokens=entry.reasoning_tokens,
                cost_nano=entry.cost_nano,
                cost_source=entry.cost_source,
                generation_id=entry.generation_id,
                latency_ms=entry.latency_ms,
                outcome=entry.outcome,
                error_kind=entry.error_kind,
                conversation_id=entry.conversation_id,
                created_at=entry.created_at,
            ),
        )
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

    async def applying(self, workspace_id: int, channel_id: str) -> list[BudgetRow]:
        rows = await stores.get_budgets(
            self.session, workspace_id=workspace_id, channel_id=channel_id
        )
        return [_budget(r) for r in rows]

    async def all(self, workspace_id: int) -> list[BudgetRow]:
        return [
            _budget(r) for r in await stores.list_budgets(self.session, workspace_id=workspace_id)
        ]

    async def set(
        self, workspace_id: int, channel_id: str, *, limit_nano: int, set_by: str
    ) -> None:
        await stores.set_budget(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            limit_nano=limit_nano,
            set_by=set_by,
        )

    async def clear(self, workspace_id: int, channel_id: str) -> bool:
        return await stores.clear_budget(
            self.session, workspace_id=workspace_id, channel_id=channel_id
        )

    async def claim_notice(self, budget_id: int, month: str) -> bool:
        return await stores.claim_notice(self.session, budget_id=budget_id, month=month)

    async def hold(
        self,
        workspace_id: int,
        channel_id: str,
        *,
        amount_nano: int,
        now: datetime,
        ttl: timedelta,
        owner: str | None = None,
    ) -> int:
        return await stores.add_reservation(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            amount_nano=amount_nano,
            now=now,
            ttl=ttl,
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
