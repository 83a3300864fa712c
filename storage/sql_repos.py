"""The core's tenant repositories over one SQLAlchemy session: rows in, plain records out.

Each class wraps the keyword-only store functions of ``storage.stores`` for one concept and
turns ORM rows into ``storage.records`` before they leave, so nothing outside ``storage``
ever holds a session-bound row. All of them share the unit of work's session (one
transaction; see ``storage.sql_store``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage import stores
from storage.models import AllowedModel, Budget, Conversation, UsageRecord
from storage.records import (
    AllowedModelRow,
    BudgetRow,
    ChannelSpend,
    ConversationRef,
    LedgerRow,
    NewModel,
    Standing,
    StoredMessage,
    UsageEntry,
    UsageSummary,
    UserSpend,
)


def _allowed(row: AllowedModel) -> AllowedModelRow:
    return AllowedModelRow(
        provider=row.provider,
        model_id=row.model_id,
        input_nano_per_1m=row.input_nano_per_1m,
        output_nano_per_1m=row.output_nano_per_1m,
        cached_input_nano_per_1m=row.cached_input_nano_per_1m,
    )


def _conversation(row: Conversation | None) -> ConversationRef | None:
    if row is None or row.id is None:
        return None
    return ConversationRef(row.id, row.provider, row.model)


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


class SessionRepo:
    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class SqlAllowlist(SessionRepo):
    async def list(self, workspace_id: int) -> list[AllowedModelRow]:
        return [
            _allowed(r) for r in await stores.list_models(self.session, workspace_id=workspace_id)
        ]

    async def get(self, workspace_id: int, model_id: str) -> AllowedModelRow | None:
        row = await stores.get_model(self.session, workspace_id=workspace_id, model_id=model_id)
        return _allowed(row) if row is not None else None

    async def add(self, workspace_id: int, model: NewModel) -> None:
        await stores.add_model(
            self.session,
            workspace_id=workspace_id,
            provider=model.provider,
            model_id=model.model_id,
            input_nano_per_1m=model.input_nano_per_1m,
            output_nano_per_1m=model.output_nano_per_1m,
            cached_input_nano_per_1m=model.cached_input_nano_per_1m,
            added_by=model.added_by,
        )

    async def add_many(self, workspace_id: int, models: Sequence[NewModel]) -> None:
        await stores.add_models_bulk(self.session, workspace_id=workspace_id, models=models)

    async def remove(self, workspace_id: int, model_id: str) -> bool:
        return await stores.remove_model(self.session, workspace_id=workspace_id, model_id=model_id)


class SqlConversations(SessionRepo):
    async def by_anchor(self, workspace_id: int, anchor: str) -> ConversationRef | None:
        return _conversation(
            await stores.find_conversation_by_anchor(
                self.session, workspace_id=workspace_id, anchor=anchor
            )
        )

    async def get(self, workspace_id: int, conversation_id: int) -> ConversationRef | None:
        return _conversation(
            await stores.get_conversation(
                self.session, workspace_id=workspace_id, conversation_id=conversation_id
            )
        )

    async def history(
        self, workspace_id: int, conversation_id: int, *, limit: int
    ) -> list[StoredMessage]:
        rows = await stores.get_messages(
            self.session, workspace_id=workspace_id, conversation_id=conversation_id, limit=limit
        )
        return [StoredMessage(r.role, r.content) for r in rows]

    async def start(
        self,
        workspace_id: int,
        *,
        channel_id: str,
        user_id: str,
        provider: str,
        model: str,
        messages: Sequence[tuple[str, str]],
        anchors: Sequence[str],
    ) -> int:
        return await stores.start_conversation(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            user_id=user_id,
            provider=provider,
            model=model,
            messages=messages,
            anchors=anchors,
        )

    async def append(
        self,
        workspace_id: int,
        conversation_id: int,
        *,
        messages: Sequence[tuple[str, str]],
        anchors: Sequence[str],
    ) -> None:
        await stores.add_messages(
            self.session,
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            messages=messages,
        )
        for anchor in anchors:
            await stores.add_anchor(
                self.session,
                workspace_id=workspace_id,
                anchor=anchor,
                conversation_id=conversation_id,
            )

    async def add_anchor(self, workspace_id: int, anchor: str, conversation_id: int) -> None:
        await stores.add_anchor(
            self.session, workspace_id=workspace_id, anchor=anchor, conversation_id=conversation_id
        )


class SqlUsage(SessionRepo):
    async def record(self, entry: UsageEntry) -> None:
        await stores.record_usage(
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
        self, workspace_id: int, usage_id: int, *, cost_nano: int | None, cost_source: str
    ) -> bool:
        row = await stores.update_usage_cost(
            self.session,
            workspace_id=workspace_id,
            usage_id=usage_id,
            cost_nano=cost_nano,
            cost_source=cost_source,
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
    ) -> int:
        return await stores.add_reservation(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            amount_nano=amount_nano,
            now=now,
            ttl=ttl,
            user_id=user_id,
        )

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
