"""``SqlStore``: the core's storage ports (``bot.core.ports.Store``) over SQLAlchemy.

``transaction()`` opens one session in one transaction and hands out the repositories of
``storage.sql_repos``, ``storage.sql_settings`` and ``storage.sql_spend`` plus the
process-level ones here (event claims, the answers-in-flight journal, the chats in flight,
Slack installations), all sharing that session. Whatever the block raises rolls the
transaction back. The chat path's transactions (``read_chat``, ``write_turn``, and the
``claim_event`` and ``put_in_flight`` every chat makes too) skip the session: Core statements
in one transaction each, on SQLite in one thread hand-off (``storage.thread_tx``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from datetime import datetime
from functools import cached_property, partial

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage import events, flights, inflight, installations
from storage.db import Database, is_database_outage, is_transient
from storage.models import ChatInFlight, SlackInstallation, utcnow
from storage.records import (
    AnswerRow,
    ChatRead,
    FlightEntry,
    FlightRow,
    SlackInstallationRecord,
    TurnWrite,
    TurnWritten,
)
from storage.sql_repos import (
    SessionRepo,
    SqlAllowlist,
    SqlConversations,
)
from storage.sql_settings import SqlAudit, SqlKeys, SqlPolicies, SqlWorkspaces
from storage.sql_spend import SqlBudgets, SqlUsage
from storage.stores import chat_path
from storage.thread_tx import run_transaction

__all__ = ["SqlStore", "SqlUnitOfWork"]


class SqlEvents(SessionRepo):
    async def prune(self, older_than: datetime) -> int:
        return await events.prune_events(self.session, older_than=older_than)

    async def raise_signal(self, platform: str, key: str) -> None:
        await events.raise_signal(self.session, platform=platform, key=key)

    async def raised_since(self, platform: str, key: str, since: datetime) -> bool:
        return await events.signal_raised_since(
            self.session, platform=platform, key=key, since=since
        )


class SqlAnswers(SessionRepo):
    async def record(
        self, *, platform: str, owner: str, targets: Sequence[str], now: datetime
    ) -> list[int]:
        return await inflight.record_answers(
            self.session, platform=platform, owner=owner, targets=targets, now=now
        )

    async def delete(self, ids: Sequence[int]) -> None:
        await inflight.delete_answers(self.session, ids=ids)

    async def heartbeat(self, owner: str, now: datetime) -> None:
        await inflight.heartbeat(self.session, owner=owner, now=now)

    async def claim_orphans(
        self, *, platform: str, owner: str, stale_before: datetime, now: datetime
    ) -> list[AnswerRow]:
        rows = await inflight.claim_orphans(
            self.session, platform=platform, owner=owner, stale_before=stale_before, now=now
        )
        return [AnswerRow(row.id, row.target) for row in rows if row.id is not None]


def _flight(row: ChatInFlight) -> FlightRow:
    assert row.id is not None
    return FlightRow(
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        user_id=row.user_id,
        provider=row.provider,
        model=row.model,
        generation_id=row.generation_id,
        owner=row.owner,
        lease_until=row.lease_until,
        started_at=row.started_at,
        prompt_tokens=row.prompt_tokens,
        streamed_chars=row.streamed_chars,
        usage_id=row.usage_id,
        id=row.id,
    )


class SqlFlights(SessionRepo):
    async def release(self, flight_id: int, owner: str) -> bool:
        return await flights.release_flight(self.session, flight_id=flight_id, owner=owner)

    async def renew(self, owner: str, until: datetime, streamed: Sequence[tuple[int, int]]) -> None:
        await flights.renew_flights(self.session, owner=owner, until=until, streamed=streamed)

    async def claim(
        self, owner: str, *, now: datetime, until: datetime, limit: int
    ) -> list[FlightRow]:
        rows = await flights.claim_flights(
            self.session, owner=owner, now=now, until=until, limit=limit
        )
        # As claimed: this process holds them now.
        return [replace(_flight(row), owner=owner, lease_until=until) for row in rows]

    async def postpone(self, flight_id: int, owner: str, until: datetime) -> None:
        await flights.postpone_flight(self.session, flight_id=flight_id, owner=owner, until=until)


def _installation(row: SlackInstallation) -> SlackInstallationRecord:
    return SlackInstallationRecord(**row.model_dump(exclude={"id"}))


class SqlInstallations(SessionRepo):
    async def save(self, record: SlackInstallationRecord) -> None:
        row = SlackInstallation(**{f.name: getattr(record, f.name) for f in fields(record)})
        await installations.save_installation(self.session, installation=row)

    async def find(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> SlackInstallationRecord | None:
        row = await installations.find_installation(
            self.session, client_id=client_id, enterprise_id=enterprise_id, team_id=team_id
        )
        return _installation(row) if row is not None else None

    async def delete(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> None:
        await installations.delete_installation(
            self.session, client_id=client_id, enterprise_id=enterprise_id, team_id=team_id
        )

    async def issue_state(self, state: str, expire_at: datetime) -> None:
        await installations.issue_oauth_state(self.session, state=state, expire_at=expire_at)

    async def consume_state(self, state: str) -> bool:
        return await installations.consume_oauth_state(self.session, state=state, now=utcnow())


class SqlUnitOfWork:
    """The repositories of one transaction. Built lazily: a chat's read touches three."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @cached_property
    def workspaces(self) -> SqlWorkspaces:
        return SqlWorkspaces(self.session)

    @cached_property
    def allowlist(self) -> SqlAllowlist:
        return SqlAllowlist(self.session)

    @cached_property
    def keys(self) -> SqlKeys:
        return SqlKeys(self.session)

    @cached_property
    def conversations(self) -> SqlConversations:
        return SqlConversations(self.session)

    @cached_property
    def usage(self) -> SqlUsage:
        return SqlUsage(self.session)

    @cached_property
    def budgets(self) -> SqlBudgets:
        return SqlBudgets(self.session)

    @cached_property
    def policies(self) -> SqlPolicies:
        return SqlPolicies(self.session)

    @cached_property
    def audit(self) -> SqlAudit:
        return SqlAudit(self.session)

    @cached_property
    def events(self) -> SqlEvents:
        return SqlEvents(self.session)

    @cached_property
    def answers(self) -> SqlAnswers:
        return SqlAnswers(self.session)

    @cached_property
    def flights(self) -> SqlFlights:
        return SqlFlights(self.session)

    @cached_property
    def installations(self) -> SqlInstallations:
        return SqlInstallations(self.session)


class SqlStore:
    """One :class:`~storage.db.Database` as the core's ``Store``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        async with self.db.session() as session:
            yield SqlUnitOfWork(session)

    async def read_chat(
        self,
        workspace_id: int,
        *,
        channel_id: str,
        user_id: str,
        model_id: str | None,
        conversation_id: int | None,
        history_limit: int,
        with_limits: bool,
    ) -> ChatRead:
        return await run_transaction(
            self.db,
            partial(
                chat_path.read_chat,
                workspace_id=workspace_id,
                channel_id=channel_id,
                user_id=user_id,
                model_id=model_id,
                conversation_id=conversation_id,
                history_limit=history_limit,
                with_limits=with_limits,
            ),
            write=False,
        )

    async def write_turn(self, turn: TurnWrite) -> TurnWritten:
        return await run_transaction(self.db, partial(chat_path.write_turn, turn=turn), write=True)

    async def claim_event(
        self, platform: str, event_key: str, *, now: datetime | None = None
    ) -> bool:
        return await run_transaction(
            self.db,
            partial(chat_path.claim_event, platform=platform, event_key=event_key, now=now),
            write=True,
        )

    async def put_in_flight(
        self, entries: Sequence[FlightEntry], *, release: Sequence[int], owner: str
    ) -> list[int]:
        return await run_transaction(
            self.db,
            partial(chat_path.put_in_flight, entries=entries, release=release, owner=owner),
            write=True,
        )

    async def ping(self) -> None:
        async with self.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def is_outage(self, exc: BaseException) -> bool:
        return is_database_outage(exc)

    async def close(self) -> None:
        await self.db.dispose()
