"""The storage ports of governance: channel policies, people turned off, the audit log.

Part of :mod:`bot.core.ports` (which re-exports these names; import them from there), kept
apart only so that neither file outgrows one screenful of ideas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Only bot.core.ports reaches into storage; it re-exports the records.
    from bot.core.ports import AuditRecord, AuditRow, ChatPolicy


class PolicyRepo(Protocol):
    """Channel policies (``channel_id == ""``: the workspace) and people turned off."""

    async def for_chat(self, workspace_id: int, channel_id: str, user_id: str) -> ChatPolicy: ...

    async def set_prompt(
        self, workspace_id: int, channel_id: str, prompt: str | None, *, by: str
    ) -> None: ...

    async def set_model(
        self, workspace_id: int, channel_id: str, model_id: str | None, *, by: str
    ) -> None: ...

    async def set_channel_off(
        self, workspace_id: int, channel_id: str, off: bool, *, by: str
    ) -> None: ...

    async def clear_model(self, workspace_id: int, model_id: str) -> int:
        """Channels whose default was ``model_id`` follow the workspace's again."""
        ...

    async def set_user_off(self, workspace_id: int, user_id: str, off: bool, *, by: str) -> bool:
        """True when it changed anything."""
        ...

    async def users_off(self, workspace_id: int) -> list[str]: ...


class AuditRepo(Protocol):
    async def record(self, entry: AuditRecord) -> None: ...

    async def latest(self, workspace_id: int, limit: int) -> list[AuditRow]:
        """Newest first."""
        ...

    def stream(self, workspace_id: int, *, since: datetime | None) -> AsyncIterator[AuditRow]:
        """Oldest first."""
        ...
