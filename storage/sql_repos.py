"""The core's tenant repositories over one SQLAlchemy session: rows in, plain records out.

Workspaces, allowlists, keys and conversations here; the ledger and budgets in
``storage.sql_spend``.

Each class wraps the keyword-only store functions of ``storage.stores`` for one concept and
turns ORM rows into ``storage.records`` before they leave, so nothing outside ``storage``
ever holds a session-bound row. All of them share the unit of work's session (one
transaction; see ``storage.sql_store``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage import stores
from storage.models import AllowedModel, Conversation
from storage.records import (
    AllowedModelRow,
    ConversationRef,
    NewModel,
)


def _allowed(row: AllowedModel) -> AllowedModelRow:
    return AllowedModelRow(
        provider=row.provider,
        model_id=row.model_id,
        input_nano_per_1m=row.input_nano_per_1m,
        output_nano_per_1m=row.output_nano_per_1m,
        cached_input_nano_per_1m=row.cached_input_nano_per_1m,
        unavailable_reason=row.unavailable_reason,
        unavailable_since=row.unavailable_since,
        confirmed_at=row.confirmed_at,
    )


def _conversation(row: Conversation | None) -> ConversationRef | None:
    if row is None or row.id is None:
        return None
    return ConversationRef(row.id, row.provider, row.model)


class SessionRepo:
    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class SqlAllowlist(SessionRepo):
    async def all(self, workspace_id: int) -> list[AllowedModelRow]:
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

    async def of_provider(
        self, provider: str, workspace_id: int | None
    ) -> list[tuple[int, AllowedModelRow]]:
        rows = await stores.list_allowlisted(
            self.session, provider=provider, workspace_id=workspace_id
        )
        return [(r.workspace_id, _allowed(r)) for r in rows]

    async def set_pricing(
        self,
        workspace_id: int,
        model_id: str,
        *,
        input_nano_per_1m: int | None,
        output_nano_per_1m: int | None,
        cached_input_nano_per_1m: int | None,
    ) -> None:
        await stores.set_model_pricing(
            self.session,
            workspace_id=workspace_id,
            model_id=model_id,
            input_nano_per_1m=input_nano_per_1m,
            output_nano_per_1m=output_nano_per_1m,
            cached_input_nano_per_1m=cached_input_nano_per_1m,
        )

    async def mark_unavailable(
        self, workspace_id: int, model_id: str, *, reason: str, now: datetime
    ) -> bool:
        return await stores.mark_unavailable(
            self.session, workspace_id=workspace_id, model_id=model_id, reason=reason, now=now
        )

    async def mark_available(self, workspace_id: int, model_id: str, *, now: datetime) -> None:
        await stores.mark_available(
            self.session, workspace_id=workspace_id, model_id=model_id, now=now
        )


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

    async def add_anchor(self, workspace_id: int, anchor: str, conversation_id: int) -> None:
        await stores.add_anchor(
            self.session, workspace_id=workspace_id, anchor=anchor, conversation_id=conversation_id
        )
