"""The chat path's two transactions, as plain functions over a :class:`~storage.thread_tx.SyncTx`.

:func:`read_chat` is everything a chat reads before it starts (the admins' policy, the model
and its allowlist row, the provider's key, the conversation's history, whether any spend
limit applies); :func:`write_turn` is everything written once it ended (the chat's row in
flight released, its turn in the conversation, its ledger row and rollups). Each runs as one
transaction through :func:`storage.thread_tx.run_transaction`: on SQLite in one hand-off to
the connection's thread. The statements are SQLAlchemy Core, built once at import; every
query is scoped by workspace. The other two writes every chat makes are here too: the claim
on its platform delivery (:func:`claim_event`) and its row in flight (:func:`put_in_flight`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, Column, Table, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.flights import FLIGHT_COLUMNS, RELEASE, flight_values
from storage.models import (
    AllowedModel,
    Budget,
    ChatInFlight,
    Conversation,
    ConversationMessage,
    ProcessedEvent,
    ProviderKey,
    UsageRecord,
    Workspace,
    utcnow,
)
from storage.records import (
    AllowedModelRow,
    ChatRead,
    FlightEntry,
    StoredKey,
    StoredMessage,
    TurnWrite,
    TurnWritten,
    UsageEntry,
)
from storage.stores._sql import naive_utc
from storage.stores.conversations import ConversationNotFoundError, anchor_upsert
from storage.stores.policies import chat_policy_stmt, policy_from_rows
from storage.stores.rollups import rollup_rows, rollup_upsert
from storage.thread_tx import SyncTx

__all__ = ["claim_event", "put_in_flight", "read_chat", "write_turn"]


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]  # set by SQLModel's metaclass


_workspace = _table(Workspace)
_allowed = _table(AllowedModel)
_keys = _table(ProviderKey)
_budget = _table(Budget)
_conversation = _table(Conversation)
_message = _table(ConversationMessage)
_usage = _table(UsageRecord)
_flights = _table(ChatInFlight)
_events = _table(ProcessedEvent)

_WS: BindParameter[int] = bindparam("workspace_id")

_DEFAULT_MODEL = select(_workspace.c.default_model).where(_workspace.c.id == _WS)
_ALLOWED = select(
    _allowed.c.provider,
    _allowed.c.model_id,
    _allowed.c.input_nano_per_1m,
    _allowed.c.output_nano_per_1m,
    _allowed.c.cached_input_nano_per_1m,
    _allowed.c.unavailable_reason,
    _allowed.c.unavailable_since,
    _allowed.c.confirmed_at,
).where(_allowed.c.workspace_id == _WS, _allowed.c.model_id == bindparam("model_id"))
_KEY = select(_keys.c.provider, _keys.c.ciphertext, _keys.c.masked).where(
    _keys.c.workspace_id == _WS, _keys.c.provider == bindparam("provider")
)
# Newest first to apply the limit (ids follow insertion order); reversed after.
_HISTORY = (
    select(_message.c.role, _message.c.content)
    .join(_conversation, _conversation.c.id == _message.c.conversation_id)
    .where(
        _message.c.conversation_id == bindparam("conversation_id"),
        _conversation.c.workspace_id == _WS,
    )
    .order_by(_message.c.id.desc())
    .limit(bindparam("limit"))
)
_HAS_LIMITS = select(_budget.c.id).where(_budget.c.workspace_id == _WS).limit(1)

_RECORDED = (
    select(_usage.c.conversation_id)
    .where(_usage.c.workspace_id == _WS, _usage.c.generation_id == bindparam("generation_id"))
    .limit(1)
)
_OWN_CONVERSATION = select(_conversation.c.id).where(
    _conversation.c.id == bindparam("conversation_id"), _conversation.c.workspace_id == _WS
)


def _insert(table: Table, names: list[str], returning: Column[Any] | None = None) -> Any:
    """``INSERT`` of the named columns, each from the parameter of the same name."""
    stmt = insert(table).values({name: bindparam(name) for name in names})
    return stmt.returning(returning) if returning is not None else stmt


_START = _insert(
    _conversation,
    ["workspace_id", "channel_id", "user_id", "provider", "model", "created_at"],
    _conversation.c.id,
)
_MESSAGE = _insert(_message, ["conversation_id", "role", "content", "created_at"])
_USAGE_COLUMNS = [f.name for f in fields(UsageEntry)]
_USAGE = _insert(_usage, _USAGE_COLUMNS, _usage.c.id)
_FLIGHTS = (
    insert(_flights)
    .values({name: bindparam(name) for name in FLIGHT_COLUMNS})
    .returning(_flights.c.id, sort_by_parameter_order=True)
)


@cache
def _claim(dialect: str) -> Any:
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_events)
    return stmt.values(
        platform=bindparam("platform"),
        event_key=bindparam("event_key"),
        created_at=bindparam("created_at"),
    ).on_conflict_do_nothing(index_elements=["platform", "event_key"])


def read_chat(
    tx: SyncTx,
    *,
    workspace_id: int,
    channel_id: str,
    user_id: str,
    model_id: str | None,
    conversation_id: int | None,
    history_limit: int,
    with_limits: bool,
) -> ChatRead:
    """Everything a chat reads before it starts; ``model_id`` is the model asked for (or the
    conversation's), ``None`` for the channel's or the workspace's default."""
    policy = policy_from_rows(
        tx.rows(
            chat_policy_stmt(),
            {"workspace_id": workspace_id, "channel_id": channel_id, "user_id": user_id},
        )
    )
    wanted = model_id or policy.channel_model
    if wanted is None:
        found = tx.first(_DEFAULT_MODEL, {"workspace_id": workspace_id})
        wanted = found[0] if found is not None else None
    model: AllowedModelRow | None = None
    key: StoredKey | None = None
    if wanted is not None:
        row = tx.first(_ALLOWED, {"workspace_id": workspace_id, "model_id": wanted})
        if row is not None:
            model = AllowedModelRow(*row)
            found = tx.first(_KEY, {"workspace_id": workspace_id, "provider": model.provider})
            key = StoredKey(*found) if found is not None else None
    history: tuple[StoredMessage, ...] = ()
    if conversation_id is not None and history_limit > 0:
        rows = tx.rows(
            _HISTORY,
            {
                "workspace_id": workspace_id,
                "conversation_id": conversation_id,
                "limit": history_limit,
            },
        )
        history = tuple(StoredMessage(role, content) for role, content in reversed(rows))
    has_limits = (
        tx.first(_HAS_LIMITS, {"workspace_id": workspace_id}) is not None if with_limits else None
    )
    return ChatRead(policy, wanted, model, key, history, has_limits)


def write_turn(tx: SyncTx, turn: TurnWrite) -> TurnWritten:
    """The chat's turn and its ledger row, in the caller's one transaction."""
    ws = turn.usage.workspace_id
    conversation_id = turn.conversation_id
    generation = turn.usage.generation_id
    if turn.check_generation and generation is not None:
        found = tx.first(_RECORDED, {"workspace_id": ws, "generation_id": generation})
        if found is not None:
            return TurnWritten(found[0])
    owned = turn.flight_row is None or (
        tx.run(RELEASE, {"flight_id": turn.flight_row, "owner": turn.owner}) == 1
    )
    if turn.messages:
        now = utcnow()
        if conversation_id is None:
            started = tx.first(
                _START,
                {
                    "workspace_id": ws,
                    "channel_id": turn.channel_id,
                    "user_id": turn.user_id,
                    "provider": turn.provider,
                    "model": turn.model,
                    "created_at": now,
                },
            )
            assert started is not None
            conversation_id = int(started[0])
        elif (
            tx.first(_OWN_CONVERSATION, {"workspace_id": ws, "conversation_id": conversation_id})
            is None
        ):
            raise ConversationNotFoundError(ws, conversation_id)
        tx.run_many(
            _MESSAGE,
            [
                {
                    "conversation_id": conversation_id,
                    "role": role,
                    "content": content,
                    "created_at": now,
                }
                for role, content in turn.messages
            ],
        )
        upsert = anchor_upsert(tx.dialect)
        for anchor in dict.fromkeys(turn.anchors):
            tx.run(
                upsert, {"workspace_id": ws, "anchor": anchor, "conversation_id": conversation_id}
            )
    if not owned:
        return TurnWritten(conversation_id, owned=False)
    usage = replace(
        turn.usage, conversation_id=conversation_id, created_at=naive_utc(turn.usage.created_at)
    )
    inserted = tx.first(_USAGE, {name: getattr(usage, name) for name in _USAGE_COLUMNS})
    assert inserted is not None
    usage_id = int(inserted[0])
    # Same transaction: the rollup can never disagree with the ledger, even across workers.
    tx.run_many(rollup_upsert(tx.dialect), rollup_rows(usage))
    if turn.settle is not None:
        tx.rows(_FLIGHTS, flight_values(replace(turn.settle, usage_id=usage_id)))
    return TurnWritten(conversation_id)


def claim_event(tx: SyncTx, *, platform: str, event_key: str, now: datetime | None = None) -> bool:
    """True for the first claim of ``event_key`` on ``platform`` (the unique constraint
    lets exactly one insert win, across processes); ``now`` dates it (pruning)."""
    claim = {"platform": platform, "event_key": event_key, "created_at": naive_utc(now) or utcnow()}
    return tx.run(_claim(tx.dialect), claim) == 1


def put_in_flight(
    tx: SyncTx, *, entries: Sequence[FlightEntry], release: Sequence[int], owner: str
) -> list[int]:
    """Release ``owner``'s rows ``release`` (chats written again) and add ``entries``; the
    new rows' ids, in order."""
    for flight_id in release:
        tx.run(RELEASE, {"flight_id": flight_id, "owner": owner})
    rows = tx.rows_many(_FLIGHTS, [flight_values(entry) for entry in entries])
    return [int(row[0]) for row in rows]
