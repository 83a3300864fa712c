"""The governance ports in memory (channel policies, people turned off, the audit log), for
``tests/unit/memory_store.py``."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from bot.core.ports import AuditRecord, AuditRow, ChatPolicy


@dataclass
class GovernanceData:
    #: (workspace, channel) -> the policy; channel "" is the workspace's.
    policies: dict[tuple[int, str], ChatPolicy] = field(default_factory=dict)
    users_off: set[tuple[int, str]] = field(default_factory=set)
    audit: list[AuditRow] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class MemoryPolicies:
    """A channel's row keeps its own prompt, model and switch in ``channel_*`` fields; the
    workspace's row (channel "") its prompt in ``workspace_prompt``."""

    def __init__(self, d: GovernanceData) -> None:
        self.d = d

    def _row(self, workspace_id: int, channel_id: str) -> ChatPolicy:
        return self.d.policies.get((workspace_id, channel_id), ChatPolicy())

    async def for_chat(self, workspace_id: int, channel_id: str, user_id: str) -> ChatPolicy:
        here = self._row(workspace_id, channel_id)
        return replace(
            here,
            workspace_prompt=self._row(workspace_id, "").workspace_prompt,
            user_off=(workspace_id, user_id) in self.d.users_off,
        )

    async def set_prompt(
        self, workspace_id: int, channel_id: str, prompt: str | None, *, by: str
    ) -> None:
        row = self._row(workspace_id, channel_id)
        if channel_id:
            row = replace(row, channel_prompt=prompt)
        else:
            row = replace(row, workspace_prompt=prompt)
        self.d.policies[(workspace_id, channel_id)] = row

    async def set_model(
        self, workspace_id: int, channel_id: str, model_id: str | None, *, by: str
    ) -> None:
        row = replace(self._row(workspace_id, channel_id), channel_model=model_id)
        self.d.policies[(workspace_id, channel_id)] = row

    async def set_channel_off(
        self, workspace_id: int, channel_id: str, off: bool, *, by: str
    ) -> None:
        row = replace(self._row(workspace_id, channel_id), channel_off=off)
        self.d.policies[(workspace_id, channel_id)] = row

    async def clear_model(self, workspace_id: int, model_id: str) -> int:
        cleared = 0
        for (ws, channel), row in list(self.d.policies.items()):
            if ws == workspace_id and row.channel_model == model_id:
                self.d.policies[(ws, channel)] = replace(row, channel_model=None)
                cleared += 1
        return cleared

    async def set_user_off(self, workspace_id: int, user_id: str, off: bool, *, by: str) -> bool:
        key = (workspace_id, user_id)
        changed = (key in self.d.users_off) != off
        if off:
            self.d.users_off.add(key)
        else:
            self.d.users_off.discard(key)
        return changed

    async def users_off(self, workspace_id: int) -> list[str]:
        return sorted(u for ws, u in self.d.users_off if ws == workspace_id)


_FIELDS = tuple(f.name for f in fields(AuditRecord))


class MemoryAudit:
    def __init__(self, d: GovernanceData) -> None:
        self.d = d

    async def record(self, entry: AuditRecord) -> None:
        values = {name: getattr(entry, name) for name in _FIELDS}
        self.d.audit.append(AuditRow(**values, id=next(self.d.ids)))

    async def latest(self, workspace_id: int, limit: int) -> list[AuditRow]:
        rows = [r for r in self.d.audit if r.workspace_id == workspace_id]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rows[:limit]

    async def stream(self, workspace_id: int, *, since: datetime | None) -> AsyncIterator[AuditRow]:
        for row in sorted(self.d.audit, key=lambda r: (r.created_at, r.id)):
            if row.workspace_id == workspace_id and (since is None or row.created_at >= since):
                yield row
