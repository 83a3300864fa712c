"""An in-memory implementation of the core's storage ports, for unit tests of the core.

It keeps plain records in dicts and applies writes at once (no rollback: the core's refusals
happen before its writes). Summaries are computed from the ledger rows themselves, which makes
them the reference the SQL rollups are checked against elsewhere.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from bot.core.ports import (
    EACH_USER,
    WORKSPACE_BUDGET,
    AllowedModelRow,
    AnswerRow,
    BudgetRow,
    ChannelSpend,
    ChatRead,
    ConversationRef,
    FlightEntry,
    FlightRow,
    LedgerRow,
    NewModel,
    SlackInstallationRecord,
    Standing,
    StoredKey,
    StoredMessage,
    TurnWrite,
    TurnWritten,
    UsageEntry,
    UsageSummary,
    UsageTokens,
    UsageTotals,
    UserSpend,
    WorkspaceRow,
)
from tests.unit.memory_governance import GovernanceData, MemoryAudit, MemoryPolicies


@dataclass
class _Hold:
    workspace_id: int
    channel_id: str
    amount_nano: int
    expires_at: datetime
    user_id: str = ""
    owner: str | None = None


@dataclass
class _Conversation:
    ref: ConversationRef
    workspace_id: int
    messages: list[StoredMessage] = field(default_factory=list)


@dataclass
class MemoryData:
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    workspaces: dict[int, WorkspaceRow] = field(default_factory=dict)
    allowlists: dict[int, dict[str, AllowedModelRow]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    keys: dict[tuple[int, str], StoredKey] = field(default_factory=dict)
    conversations: dict[int, _Conversation] = field(default_factory=dict)
    anchors: dict[tuple[int, str], int] = field(default_factory=dict)
    ledger: list[LedgerRow] = field(default_factory=list)
    #: Keyed by (workspace, channel, user): the budget's scope.
    budgets: dict[tuple[int, str, str], BudgetRow] = field(default_factory=dict)
    #: Notice claims: (budget id, subject, month, level).
    notices: set[tuple[int, str, str, int]] = field(default_factory=set)
    holds: dict[int, _Hold] = field(default_factory=dict)
    governance: GovernanceData = field(default_factory=GovernanceData)
    events: dict[tuple[str, str], datetime] = field(default_factory=dict)
    answers: dict[int, tuple[str, str, str, datetime]] = field(default_factory=dict)
    flights: dict[int, FlightRow] = field(default_factory=dict)
    installations: dict[tuple[str, str, str], SlackInstallationRecord] = field(default_factory=dict)
    states: set[str] = field(default_factory=set)
    transactions: int = 0


class _Workspaces:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def get_or_create(
        self, *, platform: str, external_id: str, name: str | None
    ) -> tuple[WorkspaceRow, bool]:
        for ws in self.d.workspaces.values():
            if (ws.platform, ws.external_id) == (platform, external_id):
                return ws, False
        ws = WorkspaceRow(next(self.d.ids), platform, external_id, name, None)
        self.d.workspaces[ws.id] = ws
        return ws, True

    async def get(self, workspace_id: int) -> WorkspaceRow | None:
        return self.d.workspaces.get(workspace_id)

    async def find(self, *, external_id: str, platform: str | None) -> list[WorkspaceRow]:
        return [
            ws
            for ws in self.d.workspaces.values()
            if ws.external_id == external_id and platform in (None, ws.platform)
        ]

    async def set_default_model(self, workspace_id: int, model_id: str | None) -> None:
        ws = self.d.workspaces[workspace_id]
        self.d.workspaces[workspace_id] = replace(ws, default_model=model_id)


class _Allowlist:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def all(self, workspace_id: int) -> list[AllowedModelRow]:
        return list(self.d.allowlists[workspace_id].values())

    async def get(self, workspace_id: int, model_id: str) -> AllowedModelRow | None:
        return self.d.allowlists[workspace_id].get(model_id)

    async def add(self, workspace_id: int, model: NewModel) -> None:
        self.d.allowlists[workspace_id][model.model_id] = AllowedModelRow(
            model.provider,
            model.model_id,
            model.input_nano_per_1m,
            model.output_nano_per_1m,
            model.cached_input_nano_per_1m,
        )

    async def add_many(self, workspace_id: int, models: Sequence[NewModel]) -> None:
        for model in models:
            if model.model_id not in self.d.allowlists[workspace_id]:
                await self.add(workspace_id, model)

    async def of_provider(
        self, provider: str, workspace_id: int | None
    ) -> list[tuple[int, AllowedModelRow]]:
        return [
            (ws, row)
            for ws, rows in sorted(self.d.allowlists.items())
            for row in rows.values()
            if row.provider == provider and workspace_id in (None, ws)
        ]

    def _update(self, workspace_id: int, model_id: str, **changes: object) -> None:
        row = self.d.allowlists[workspace_id].get(model_id)
        if row is not None:
            self.d.allowlists[workspace_id][model_id] = replace(row, **changes)  # type: ignore[arg-type]

    async def set_pricing(
        self,
        workspace_id: int,
        model_id: str,
        *,
        input_nano_per_1m: int | None,
        output_nano_per_1m: int | None,
        cached_input_nano_per_1m: int | None,
    ) -> None:
        self._update(
            workspace_id,
            model_id,
            input_nano_per_1m=input_nano_per_1m,
            output_nano_per_1m=output_nano_per_1m,
            cached_input_nano_per_1m=cached_input_nano_per_1m,
        )

    async def mark_unavailable(
        self, workspace_id: int, model_id: str, *, reason: str, now: datetime
    ) -> bool:
        row = self.d.allowlists[workspace_id].get(model_id)
        if row is None or row.unavailable_reason is not None:
            return False
        self._update(workspace_id, model_id, unavailable_reason=reason, unavailable_since=now)
        return True

    async def mark_available(self, workspace_id: int, model_id: str, *, now: datetime) -> None:
        self._update(
            workspace_id,
            model_id,
            unavailable_reason=None,
            unavailable_since=None,
            confirmed_at=now,
        )

    async def remove(self, workspace_id: int, model_id: str) -> bool:
        if self.d.allowlists[workspace_id].pop(model_id, None) is None:
            return False
        ws = self.d.workspaces[workspace_id]
        if ws.default_model == model_id:
            self.d.workspaces[workspace_id] = replace(ws, default_model=None)
        return True


class _Keys:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def get(self, workspace_id: int, provider: str) -> StoredKey | None:
        return self.d.keys.get((workspace_id, provider))

    async def all(self, workspace_id: int) -> list[StoredKey]:
        return [k for (ws, _), k in sorted(self.d.keys.items()) if ws == workspace_id]

    async def set(
        self, workspace_id: int, *, provider: str, ciphertext: bytes, masked: str, set_by: str
    ) -> None:
        self.d.keys[(workspace_id, provider)] = StoredKey(provider, ciphertext, masked)

    async def delete(self, workspace_id: int, provider: str) -> bool:
        return self.d.keys.pop((workspace_id, provider), None) is not None


class _Conversations:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    def _owned(self, workspace_id: int, conversation_id: int) -> _Conversation:
        conv = self.d.conversations.get(conversation_id)
        if conv is None or conv.workspace_id != workspace_id:
            raise LookupError(f"conversation {conversation_id} not in workspace {workspace_id}")
        return conv

    async def by_anchor(self, workspace_id: int, anchor: str) -> ConversationRef | None:
        conv_id = self.d.anchors.get((workspace_id, anchor))
        return self.d.conversations[conv_id].ref if conv_id is not None else None

    async def get(self, workspace_id: int, conversation_id: int) -> ConversationRef | None:
        conv = self.d.conversations.get(conversation_id)
        return conv.ref if conv is not None and conv.workspace_id == workspace_id else None

    async def history(
        self, workspace_id: int, conversation_id: int, *, limit: int
    ) -> list[StoredMessage]:
        conv = self.d.conversations.get(conversation_id)
        if conv is None or conv.workspace_id != workspace_id or limit <= 0:
            return []
        return conv.messages[-limit:]

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
        conv_id = next(self.d.ids)
        self.d.conversations[conv_id] = _Conversation(
            ConversationRef(conv_id, provider, model),
            workspace_id,
            [StoredMessage(role, content) for role, content in messages],
        )
        for anchor in anchors:
            self.d.anchors.setdefault((workspace_id, anchor), conv_id)
        return conv_id

    async def append(
        self,
        workspace_id: int,
        conversation_id: int,
        *,
        messages: Sequence[tuple[str, str]],
        anchors: Sequence[str],
    ) -> None:
        conv = self._owned(workspace_id, conversation_id)
        conv.messages.extend(StoredMessage(role, content) for role, content in messages)
        for anchor in anchors:
            self.d.anchors.setdefault((workspace_id, anchor), conversation_id)

    async def add_anchor(self, workspace_id: int, anchor: str, conversation_id: int) -> None:
        self._owned(workspace_id, conversation_id)
        self.d.anchors.setdefault((workspace_id, anchor), conversation_id)


def _totals(rows: Sequence[UsageEntry]) -> UsageTotals:
    ok = [r for r in rows if r.outcome != "error"]
    return UsageTotals(
        cost_nano=sum(r.cost_nano or 0 for r in rows),
        chats=len(ok),
        failed=len(rows) - len(ok),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        cached_tokens=sum(r.cached_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        computed_cost_chats=sum(
            1
            for r in rows
            if r.cost_source in ("computed", "estimated") and r.cost_nano is not None
        ),
        unknown_cost_chats=sum(1 for r in ok if r.cost_nano is None),
    )


def _grouped(rows: Sequence[UsageEntry], key: str) -> list[tuple[str, UsageTotals]]:
    groups: dict[str, list[UsageEntry]] = defaultdict(list)
    for r in rows:
        value = (r.model_served or r.model_requested) if key == "model" else getattr(r, key)
        groups[value].append(r)
    out = [(k, _totals(v)) for k, v in groups.items()]
    out.sort(key=lambda kv: (-kv[1].cost_nano, kv[0]))
    return out


class _Usage:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def record(self, entry: UsageEntry) -> int:
        fields = {name: getattr(entry, name) for name in UsageEntry.__dataclass_fields__}
        row = LedgerRow(**fields, id=next(self.d.ids))
        self.d.ledger.append(row)
        return row.id

    async def conversation_of_generation(
        self, workspace_id: int, generation_id: str
    ) -> tuple[bool, int | None]:
        for row in self.d.ledger:
            if row.workspace_id == workspace_id and row.generation_id == generation_id:
                return True, row.conversation_id
        return False, None

    def _rows(
        self,
        workspace_id: int,
        channel_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[LedgerRow]:
        return [
            r
            for r in self.d.ledger
            if r.workspace_id == workspace_id
            and channel_id in (None, r.channel_id)
            and (since is None or r.created_at >= since)
            and (until is None or r.created_at < until)
        ]

    async def summarize(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> UsageSummary:
        rows = self._rows(workspace_id, channel_id, since, until)
        return UsageSummary(
            totals=_totals(rows),
            by_model=_grouped(rows, "model"),
            by_user=_grouped(rows, "user_id"),
            by_channel=_grouped(rows, "channel_id"),
        )

    async def daily_spend(
        self,
        workspace_id: int,
        *,
        channel_id: str | None,
        first_day: date | None,
        end_day: date | None,
        user_id: str | None = None,
    ) -> list[tuple[date, int]]:
        days: dict[date, int] = defaultdict(int)
        for r in self._rows(workspace_id, channel_id, None, None):
            if user_id is not None and r.user_id != user_id:
                continue
            day = r.created_at.date()
            if (first_day is None or day >= first_day) and (end_day is None or day < end_day):
                days[day] += r.cost_nano or 0
        return sorted(days.items())

    async def summarize_user(
        self, workspace_id: int, user_id: str, *, since: datetime | None, until: datetime | None
    ) -> UsageSummary:
        rows = [r for r in self._rows(workspace_id, None, since, until) if r.user_id == user_id]
        by_model = _grouped(rows, "model")
        return UsageSummary(
            totals=_totals(rows),
            by_model=by_model,
            by_user=[(user_id, _totals(rows))] if rows else [],
            by_channel=_grouped(rows, "channel_id"),
        )

    async def stream(
        self, workspace_id: int, *, since: datetime | None, with_generation_id: bool = False
    ) -> AsyncIterator[LedgerRow]:
        for row in self._rows(workspace_id, None, since, None):
            if not with_generation_id or row.generation_id is not None:
                yield row

    async def correct_cost(
        self,
        workspace_id: int,
        usage_id: int,
        *,
        cost_nano: int | None,
        cost_source: str,
        tokens: UsageTokens | None = None,
    ) -> bool:
        for i, row in enumerate(self.d.ledger):
            if row.id == usage_id and row.workspace_id == workspace_id:
                row = replace(row, cost_nano=cost_nano, cost_source=cost_source)
                if tokens is not None:
                    row = replace(
                        row,
                        prompt_tokens=tokens.prompt_tokens,
                        cached_tokens=tokens.cached_tokens,
                        completion_tokens=tokens.completion_tokens,
                        model_served=tokens.model_served or row.model_served,
                    )
                self.d.ledger[i] = row
                return True
        return False


def _scope_order(b: BudgetRow) -> tuple[int, str, str]:
    if b.user_id == WORKSPACE_BUDGET:
        return (0 if b.channel_id == WORKSPACE_BUDGET else 1, b.channel_id, "")
    return (2 if b.user_id == EACH_USER else 3, "", b.user_id)


class _Budgets:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def lock(self, workspace_id: int) -> None:
        return None  # one event loop, no await between read and write below

    async def has_any(self, workspace_id: int) -> bool:
        return any(ws == workspace_id for ws, _, _ in self.d.budgets)

    async def applying(
        self, workspace_id: int, channel_id: str, user_id: str = ""
    ) -> list[BudgetRow]:
        scopes = [(WORKSPACE_BUDGET, WORKSPACE_BUDGET), (channel_id, WORKSPACE_BUDGET)]
        if user_id:
            scopes += [(WORKSPACE_BUDGET, user_id), (WORKSPACE_BUDGET, EACH_USER)]
        found = [self.d.budgets.get((workspace_id, c, u)) for c, u in scopes]
        return sorted((b for b in found if b is not None), key=_scope_order)

    async def all(self, workspace_id: int) -> list[BudgetRow]:
        rows = [b for (ws, _, _), b in self.d.budgets.items() if ws == workspace_id]
        return sorted(rows, key=_scope_order)

    async def get(self, workspace_id: int, channel_id: str, user_id: str = "") -> BudgetRow | None:
        return self.d.budgets.get((workspace_id, channel_id, user_id))

    async def set(
        self, workspace_id: int, channel_id: str, *, limit_nano: int, set_by: str, user_id: str = ""
    ) -> None:
        old = self.d.budgets.get((workspace_id, channel_id, user_id))
        budget_id = old.id if old is not None else next(self.d.ids)
        self.d.budgets[(workspace_id, channel_id, user_id)] = BudgetRow(
            budget_id, channel_id, limit_nano, user_id, set_by
        )
        self.d.notices = {n for n in self.d.notices if n[0] != budget_id}

    async def clear(self, workspace_id: int, channel_id: str, user_id: str = "") -> bool:
        old = self.d.budgets.pop((workspace_id, channel_id, user_id), None)
        if old is not None:
            self.d.notices = {n for n in self.d.notices if n[0] != old.id}
        return old is not None

    async def claim_notice(
        self, budget_id: int, month: str, *, level: int = 80, subject: str = ""
    ) -> bool:
        key = (budget_id, subject, month, level)
        if key in self.d.notices:
            return False
        self.d.notices.add(key)
        return True

    async def hold(
        self,
        workspace_id: int,
        channel_id: str,
        *,
        amount_nano: int,
        now: datetime,
        ttl: timedelta,
        user_id: str = "",
        owner: str | None = None,
    ) -> int:
        hold_id = next(self.d.ids)
        self.d.holds[hold_id] = _Hold(
            workspace_id, channel_id, amount_nano, now + ttl, user_id, owner
        )
        return hold_id

    async def renew_holds(self, owner: str, ids: Sequence[int], until: datetime) -> None:
        for hold_id in ids:
            hold = self.d.holds.get(hold_id)
            if hold is not None and hold.owner == owner:
                hold.expires_at = until

    async def prune_lapsed(self, now: datetime) -> int:
        lapsed = [hold_id for hold_id, h in self.d.holds.items() if h.expires_at <= now]
        for hold_id in lapsed:
            del self.d.holds[hold_id]
        return len(lapsed)

    async def release(self, workspace_id: int, hold_id: int) -> None:
        hold = self.d.holds.get(hold_id)
        if hold is not None and hold.workspace_id == workspace_id:
            del self.d.holds[hold_id]

    async def prune_holds(self, workspace_id: int, now: datetime) -> None:
        for hold_id, h in list(self.d.holds.items()):
            if h.workspace_id == workspace_id and h.expires_at <= now:
                del self.d.holds[hold_id]

    def _live(self, workspace_id: int, now: datetime) -> list[_Hold]:
        return [
            h
            for h in self.d.holds.values()
            if h.workspace_id == workspace_id and h.expires_at > now
        ]

    def _month(self, workspace_id: int, first_day: date) -> list[LedgerRow]:
        since = datetime.combine(first_day, datetime.min.time())
        return [
            r for r in self.d.ledger if r.workspace_id == workspace_id and r.created_at >= since
        ]

    async def held(self, workspace_id: int, channel_id: str | None, now: datetime) -> int:
        return sum(
            h.amount_nano
            for h in self._live(workspace_id, now)
            if channel_id in (None, h.channel_id)
        )

    async def spent_since(self, workspace_id: int, channel_id: str | None, first_day: date) -> int:
        return sum(
            r.cost_nano or 0
            for r in self._month(workspace_id, first_day)
            if channel_id in (None, r.channel_id)
        )

    async def standing(
        self, workspace_id: int, channel_id: str, user_id: str, first_day: date, now: datetime
    ) -> Standing:
        rows, live = self._month(workspace_id, first_day), self._live(workspace_id, now)
        return Standing(
            workspace_spent=sum(r.cost_nano or 0 for r in rows),
            channel_spent=sum(r.cost_nano or 0 for r in rows if r.channel_id == channel_id),
            user_spent=sum(r.cost_nano or 0 for r in rows if r.user_id == user_id),
            workspace_held=sum(h.amount_nano for h in live),
            channel_held=sum(h.amount_nano for h in live if h.channel_id == channel_id),
            user_held=sum(h.amount_nano for h in live if h.user_id == user_id),
        )

    async def by_channel(self, workspace_id: int, first_day: date, now: datetime) -> ChannelSpend:
        spent: dict[str, int] = defaultdict(int)
        held: dict[str, int] = defaultdict(int)
        for r in self._month(workspace_id, first_day):
            spent[r.channel_id] += r.cost_nano or 0
        for h in self._live(workspace_id, now):
            held[h.channel_id] += h.amount_nano
        return ChannelSpend(dict(spent), dict(held))

    async def by_user(self, workspace_id: int, first_day: date, now: datetime) -> UserSpend:
        spent: dict[str, int] = defaultdict(int)
        held: dict[str, int] = defaultdict(int)
        for r in self._month(workspace_id, first_day):
            spent[r.user_id] += r.cost_nano or 0
        for h in self._live(workspace_id, now):
            held[h.user_id] += h.amount_nano
        return UserSpend(dict(spent), dict(held))


class _Events:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def claim(self, platform: str, event_key: str) -> bool:
        if (platform, event_key) in self.d.events:
            return False
        self.d.events[(platform, event_key)] = datetime.now()
        return True

    async def raise_signal(self, platform: str, key: str) -> None:
        self.d.events[(platform, key)] = datetime.now()

    async def raised_since(self, platform: str, key: str, since: datetime) -> bool:
        at = self.d.events.get((platform, key))
        return at is not None and at >= since

    async def prune(self, older_than: datetime) -> int:
        old = [k for k, at in self.d.events.items() if at < older_than]
        for k in old:
            del self.d.events[k]
        return len(old)


class _Answers:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def record(
        self, *, platform: str, owner: str, targets: Sequence[str], now: datetime
    ) -> list[int]:
        ids = []
        for target in targets:
            row_id = next(self.d.ids)
            self.d.answers[row_id] = (platform, owner, target, now)
            ids.append(row_id)
        return ids

    async def delete(self, ids: Sequence[int]) -> None:
        for row_id in ids:
            self.d.answers.pop(row_id, None)

    async def heartbeat(self, owner: str, now: datetime) -> None:
        for row_id, (platform, who, target, _) in list(self.d.answers.items()):
            if who == owner:
                self.d.answers[row_id] = (platform, who, target, now)

    async def claim_orphans(
        self, *, platform: str, owner: str, stale_before: datetime, now: datetime
    ) -> list[AnswerRow]:
        claimed = []
        for row_id, (plat, _, target, beat) in list(self.d.answers.items()):
            if plat == platform and beat < stale_before:
                self.d.answers[row_id] = (plat, owner, target, now)
                claimed.append(AnswerRow(row_id, target))
        return claimed


class _Flights:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def add(self, entries: Sequence[FlightEntry]) -> list[int]:
        ids = []
        for entry in entries:
            fields = {name: getattr(entry, name) for name in FlightEntry.__dataclass_fields__}
            row = FlightRow(**fields, id=next(self.d.ids))
            self.d.flights[row.id] = row
            ids.append(row.id)
        return ids

    async def release(self, flight_id: int, owner: str) -> bool:
        row = self.d.flights.get(flight_id)
        if row is None or row.owner != owner:
            return False
        del self.d.flights[flight_id]
        return True

    async def renew(self, owner: str, until: datetime, streamed: Sequence[tuple[int, int]]) -> None:
        for flight_id, chars in streamed:
            row = self.d.flights.get(flight_id)
            if row is not None and row.owner == owner:
                self.d.flights[flight_id] = replace(row, lease_until=until, streamed_chars=chars)

    async def claim(
        self, owner: str, *, now: datetime, until: datetime, limit: int
    ) -> list[FlightRow]:
        lapsed = sorted(
            (r for r in self.d.flights.values() if r.lease_until < now),
            key=lambda r: (r.lease_until, r.id),
        )
        claimed = []
        for row in lapsed[:limit]:
            row = replace(row, owner=owner, lease_until=until)
            self.d.flights[row.id] = row
            claimed.append(row)
        return claimed

    async def postpone(self, flight_id: int, owner: str, until: datetime) -> None:
        row = self.d.flights.get(flight_id)
        if row is not None and row.owner == owner:
            self.d.flights[flight_id] = replace(row, lease_until=until)


class _Installations:
    def __init__(self, d: MemoryData) -> None:
        self.d = d

    async def save(self, record: SlackInstallationRecord) -> None:
        key = (record.client_id, record.enterprise_id, record.team_id)
        self.d.installations[key] = record

    async def find(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> SlackInstallationRecord | None:
        return self.d.installations.get((client_id, enterprise_id or "", team_id or ""))

    async def delete(
        self, *, client_id: str, enterprise_id: str | None, team_id: str | None
    ) -> None:
        self.d.installations.pop((client_id, enterprise_id or "", team_id or ""), None)

    async def issue_state(self, state: str, expire_at: datetime) -> None:
        self.d.states.add(state)

    async def consume_state(self, state: str) -> bool:
        if state in self.d.states:
            self.d.states.discard(state)
            return True
        return False


class MemoryUnitOfWork:
    def __init__(self, d: MemoryData) -> None:
        self.workspaces = _Workspaces(d)
        self.allowlist = _Allowlist(d)
        self.keys = _Keys(d)
        self.conversations = _Conversations(d)
        self.usage = _Usage(d)
        self.budgets = _Budgets(d)
        self.policies = MemoryPolicies(d.governance)
        self.audit = MemoryAudit(d.governance)
        self.events = _Events(d)
        self.answers = _Answers(d)
        self.flights = _Flights(d)
        self.installations = _Installations(d)


class MemoryStore:
    """The core's ``Store`` port in memory; ``data`` is there for tests to look at."""

    def __init__(self) -> None:
        self.data = MemoryData()
        self.down = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryUnitOfWork]:
        if self.down:
            raise ConnectionRefusedError("the in-memory database is down")
        self.data.transactions += 1
        yield MemoryUnitOfWork(self.data)

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
        async with self.transaction() as tx:
            policy = await tx.policies.for_chat(workspace_id, channel_id, user_id)
            wanted = model_id or policy.channel_model
            if wanted is None:
                ws = await tx.workspaces.get(workspace_id)
                wanted = ws.default_model if ws else None
            model = await tx.allowlist.get(workspace_id, wanted) if wanted else None
            key = await tx.keys.get(workspace_id, model.provider) if model else None
            history: list[StoredMessage] = []
            if conversation_id is not None:
                history = await tx.conversations.history(
                    workspace_id, conversation_id, limit=history_limit
                )
            has_limits = await tx.budgets.has_any(workspace_id) if with_limits else None
        return ChatRead(policy, wanted, model, key, tuple(history), has_limits)

    async def claim_event(self, platform: str, event_key: str) -> bool:
        async with self.transaction() as tx:
            return await tx.events.claim(platform, event_key)

    async def put_in_flight(
        self, entries: Sequence[FlightEntry], *, release: Sequence[int], owner: str
    ) -> list[int]:
        async with self.transaction() as tx:
            for flight_id in release:
                await tx.flights.release(flight_id, owner)
            return await tx.flights.add(entries)

    async def write_turn(self, turn: TurnWrite) -> TurnWritten:
        async with self.transaction() as tx:
            ws = turn.usage.workspace_id
            generation = turn.usage.generation_id
            if turn.check_generation and generation is not None:
                found, recorded_with = await tx.usage.conversation_of_generation(ws, generation)
                if found:
                    return TurnWritten(recorded_with)
            owned = turn.flight_row is None or await tx.flights.release(turn.flight_row, turn.owner)
            conversation_id = turn.conversation_id
            if turn.messages:
                if conversation_id is None:
                    conversation_id = await tx.conversations.start(
                        ws,
                        channel_id=turn.channel_id,
                        user_id=turn.user_id,
                        provider=turn.provider,
                        model=turn.model,
                        messages=turn.messages,
                        anchors=turn.anchors,
                    )
                else:
                    await tx.conversations.append(
                        ws, conversation_id, messages=turn.messages, anchors=turn.anchors
                    )
            if not owned:
                return TurnWritten(conversation_id, owned=False)
            usage_id = await tx.usage.record(replace(turn.usage, conversation_id=conversation_id))
            if turn.settle is not None:
                await tx.flights.add([replace(turn.settle, usage_id=usage_id)])
        return TurnWritten(conversation_id)

    async def ping(self) -> None:
        if self.down:
            raise ConnectionRefusedError("the in-memory database is down")

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, ConnectionRefusedError)

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, ConnectionRefusedError)

    async def close(self) -> None:
        return None
