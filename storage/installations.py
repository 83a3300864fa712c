"""Slack OAuth installations and one-time OAuth states, for bolt's installation flow.

Tokens arrive here already encrypted (the caller owns the key vault), as provider keys do.
One row per (client, enterprise, team): a re-install replaces it, which is all routerbot needs
(bot tokens only; no per-user tokens).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import SlackInstallation, SlackOAuthState, utcnow
from storage.stores._sql import naive_utc, upsert_insert

__all__ = [
    "consume_oauth_state",
    "delete_installation",
    "find_installation",
    "issue_oauth_state",
    "save_installation",
]

_KEY_COLUMNS = ("client_id", "enterprise_id", "team_id")


async def save_installation(session: AsyncSession, *, installation: SlackInstallation) -> None:
    """Insert or replace the installation for its (client, enterprise, team)."""
    values = installation.model_dump(exclude={"id"})
    for name in ("installed_at", "bot_token_expires_at"):
        values[name] = naive_utc(values[name])
    table = SlackInstallation.__table__  # type: ignore[attr-defined]
    statement = upsert_insert(session, table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS),
        set_={k: statement.excluded[k] for k in values if k not in _KEY_COLUMNS},
    )
    await session.execute(statement)


async def find_installation(
    session: AsyncSession, *, client_id: str, enterprise_id: str | None, team_id: str | None
) -> SlackInstallation | None:
    result = await session.scalars(
        select(SlackInstallation).where(
            col(SlackInstallation.client_id) == client_id,
            col(SlackInstallation.enterprise_id) == (enterprise_id or ""),
            col(SlackInstallation.team_id) == (team_id or ""),
        )
    )
    return result.first()


async def delete_installation(
    session: AsyncSession, *, client_id: str, enterprise_id: str | None, team_id: str | None
) -> int:
    result = await session.execute(
        delete(SlackInstallation).where(
            col(SlackInstallation.client_id) == client_id,
            col(SlackInstallation.enterprise_id) == (enterprise_id or ""),
            col(SlackInstallation.team_id) == (team_id or ""),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def issue_oauth_state(session: AsyncSession, *, state: str, expire_at: datetime) -> None:
    session.add(SlackOAuthState(state=state, expire_at=naive_utc(expire_at) or expire_at))
    # Expired states are useless; dropping them here keeps the table at a handful of rows.
    await session.execute(delete(SlackOAuthState).where(col(SlackOAuthState.expire_at) < utcnow()))


async def consume_oauth_state(
    session: AsyncSession, *, state: str, now: datetime | None = None
) -> bool:
    """True once for a live state: the DELETE decides, so two redirects cannot both win."""
    result = await session.execute(
        delete(SlackOAuthState).where(
            col(SlackOAuthState.state) == state,
            col(SlackOAuthState.expire_at) > (naive_utc(now) or utcnow()),
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
