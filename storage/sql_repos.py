"""The core's tenant repositories over one SQLAlchemy session: rows in, plain records out.

Each class wraps the keyword-only store functions of ``storage.stores`` for one concept and
turns ORM rows into ``storage.records`` before they leave, so nothing outside ``storage``
ever holds a session-bound row. All of them share the unit of work's session (one
transaction; see ``storage.sql_store``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from storage import stores
from storage.models import AllowedModel, Conversation, Workspace
from storage.records import (
    AllowedModelRow,
    ConversationRef,
    NewModel,
    StoredKey,
    StoredMessage,
    WorkspaceRow,
)


def _workspace(row: Workspace) -> WorkspaceRow:
    assert row.id is not None
    return WorkspaceRow(row.id, row.platform, row.external_id, row.name, row.default_model)


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


class SessionRepo:
    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class SqlWorkspaces(SessionRepo):
    async def get_or_create(
        self, *, platform: str, external_id: str, name: str | None
    ) -> tuple[WorkspaceRow, bool]:
        row, created = await stores.get_or_create_workspace(
            self.session, platform=platform, external_id=external_id, name=name
        )
        return _workspace(row), created

    async def get(self, workspace_id: int) -> WorkspaceRow | None:
        row = await stores.get_workspace_by_id(self.session, workspace_id=workspace_id)
        return _workspace(row) if row is not None else None

    async def find(self, *, external_id: str, platform: str | None) -> list[WorkspaceRow]:
        rows = await stores.find_workspaces(
            self.session, external_id=external_id, platform=platform
        )
        return [_workspace(r) for r in rows]

    async def set_default_model(self, workspace_id: int, model_id: str | None) -> None:
        await stores.set_default_model(self.session, workspace_id=workspace_id, model_id=model_id)


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


class SqlKeys(SessionRepo):
    async def get(self, workspace_id: int, provider: str) -> StoredKey | None:
        row = await stores.get_key(self.session, workspace_id=workspace_id, provider=provider)
        return StoredKey(row.provider, row.ciphertext, row.masked) if row is not None else None

    async def list(self, workspace_id: int) -> list[StoredKey]:
        rows = await stores.list_keys(self.session, workspace_id=workspace_id)
        return [StoredKey(r.provider, r.ciphertext, r.masked) for r in rows]

    async def set(
        self, workspace_id: int, *, provider: str, ciphertext: bytes, masked: str, set_by: str
    ) -> None:
        await stores.set_key(
            self.session,
            workspace_id=workspace_id,
            provider=provider,
            ciphertext=ciphertext,
            masked=masked,
            set_by=set_by,
        )

    async def delete(self, workspace_id: int, provider: str) -> bool:
        return await stores.delete_key(self.session, workspace_id=workspace_id, provider=provider)


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
