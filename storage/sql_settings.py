"""The repositories of what a workspace's admins decide, over one SQLAlchemy session: the
workspace row (its default model), provider keys, channel policies and people turned off,
and the audit log that records every change to them.

Like ``storage.sql_repos``: keyword-only store functions wrapped per concept, ORM rows turned
into ``storage.records`` before they leave, one session (one transaction) for all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import datetime

from storage import stores
from storage.models import AuditEntry, Workspace
from storage.records import AuditRecord, AuditRow, ChatPolicy, StoredKey, WorkspaceRow
from storage.sql_repos import SessionRepo

__all__ = ["SqlAudit", "SqlKeys", "SqlPolicies", "SqlWorkspaces"]


def _workspace(row: Workspace) -> WorkspaceRow:
    assert row.id is not None
    return WorkspaceRow(row.id, row.platform, row.external_id, row.name, row.default_model)


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


class SqlKeys(SessionRepo):
    async def get(self, workspace_id: int, provider: str) -> StoredKey | None:
        row = await stores.get_key(self.session, workspace_id=workspace_id, provider=provider)
        return StoredKey(row.provider, row.ciphertext, row.masked) if row is not None else None

    async def all(self, workspace_id: int) -> list[StoredKey]:
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


class SqlPolicies(SessionRepo):
    async def for_chat(self, workspace_id: int, channel_id: str, user_id: str) -> ChatPolicy:
        return await stores.chat_policy(
            self.session, workspace_id=workspace_id, channel_id=channel_id, user_id=user_id
        )

    async def set_prompt(
        self, workspace_id: int, channel_id: str, prompt: str | None, *, by: str
    ) -> None:
        await stores.set_policy(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            by=by,
            system_prompt=prompt,
        )

    async def set_model(
        self, workspace_id: int, channel_id: str, model_id: str | None, *, by: str
    ) -> None:
        await stores.set_policy(
            self.session,
            workspace_id=workspace_id,
            channel_id=channel_id,
            by=by,
            default_model=model_id,
        )

    async def set_channel_off(
        self, workspace_id: int, channel_id: str, off: bool, *, by: str
    ) -> None:
        await stores.set_policy(
            self.session, workspace_id=workspace_id, channel_id=channel_id, by=by, chats_off=off
        )

    async def clear_model(self, workspace_id: int, model_id: str) -> int:
        return await stores.clear_channel_models(
            self.session, workspace_id=workspace_id, model_id=model_id
        )

    async def set_user_off(self, workspace_id: int, user_id: str, off: bool, *, by: str) -> bool:
        return await stores.set_user_off(
            self.session, workspace_id=workspace_id, user_id=user_id, off=off, by=by
        )

    async def users_off(self, workspace_id: int) -> list[str]:
        return await stores.users_off(self.session, workspace_id=workspace_id)


_AUDIT_FIELDS = tuple(f.name for f in fields(AuditRecord))


def _audit_row(entry: AuditEntry) -> AuditRow:
    assert entry.id is not None
    return AuditRow(**{name: getattr(entry, name) for name in _AUDIT_FIELDS}, id=entry.id)


class SqlAudit(SessionRepo):
    async def record(self, entry: AuditRecord) -> None:
        row = AuditEntry(**{name: getattr(entry, name) for name in _AUDIT_FIELDS})
        await stores.record_audit(self.session, entry=row)

    async def latest(self, workspace_id: int, limit: int) -> list[AuditRow]:
        rows = await stores.latest_audit(self.session, workspace_id=workspace_id, limit=limit)
        return [_audit_row(r) for r in rows]

    async def stream(self, workspace_id: int, *, since: datetime | None) -> AsyncIterator[AuditRow]:
        async for entry in stores.stream_audit(
            self.session, workspace_id=workspace_id, since=since
        ):
            yield _audit_row(entry)
