"""Channel policies, access and the audit log (SPEC §5a, §5b) on SQLite and PostgreSQL, with
the fake OpenRouter over HTTP recording what is sent: the system prompt and model chosen by
precedence, refusals that send nothing, every admin change audited in its own transaction,
and ``routerbot audit`` exporting the log spreadsheet-safe."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import cli
from bot.core import audit as core_audit
from bot.core.policies import CHANNEL_OFF, USER_OFF
from bot.core.ports import mask_key
from bot.core.replies import ChatCompleted, ChatFailed, ErrorReply, Invocation, TextReply
from bot.runtime import Runtime
from storage.models import AuditEntry, Budget, UsageRecord
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.spend_support import ADMIN, MEMBER, Clock, run, spend_runtime

NOW = datetime(2026, 3, 15, 12, 0)
CHEAP, STRONG = "openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"
ELSEWHERE = Invocation("console", "acme", "random", "bob")


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@pytest.fixture
async def rt(database_url: str, fake: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with spend_runtime(database_url, fake, tmp_path, Clock(NOW)) as runtime:
        yield runtime


def _ok(replies: list[object]) -> str:
    assert replies and all(isinstance(r, TextReply) for r in replies), replies
    return "\n".join(r.text for r in replies if isinstance(r, TextReply))


async def _chat(rt: Runtime, ctx: Invocation, text: str = "hi") -> ChatCompleted | ChatFailed:
    last = (await run(rt, ctx, f"/chat {text}"))[-1]
    assert isinstance(last, ChatCompleted | ChatFailed), last
    return last


async def test_prompt_and_model_follow_the_channel_then_the_workspace(
    rt: Runtime, fake: FakeOpenRouter
) -> None:
    _ok(await run(rt, ADMIN, "/prompt set Be brief."))
    _ok(await run(rt, ADMIN, "/prompt set --channel Answer in French."))
    _ok(await run(rt, ADMIN, f"/models default {CHEAP} --channel"))

    first = await _chat(rt, MEMBER, "bonjour")
    assert isinstance(first, ChatCompleted) and first.model == CHEAP
    sent = fake.chat_requests[-1].json
    assert sent["model"] == CHEAP
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "bonjour"},
    ]
    other = await _chat(rt, ELSEWHERE, "hello")
    assert isinstance(other, ChatCompleted) and other.model == STRONG
    assert fake.chat_requests[-1].json["messages"][0] == {"role": "system", "content": "Be brief."}

    # A conversation keeps its model when the channel's default changes; the prompt in force
    # goes first on every turn (it is not part of the stored history).
    _ok(await run(rt, ADMIN, f"/models default {STRONG} --channel"))
    conversation = await rt.dispatcher.conversation(MEMBER, first.conversation_id)
    replies = [r async for r in rt.dispatcher.follow_up(MEMBER, conversation, "encore")]
    assert isinstance(replies[-1], ChatCompleted) and replies[-1].model == CHEAP
    assert [m["role"] for m in fake.chat_requests[-1].json["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    cleared = _ok(await run(rt, ADMIN, "/models default clear --channel"))
    assert "workspace's default model" in cleared
    assert (await _chat(rt, MEMBER)).model == STRONG  # type: ignore[union-attr]


async def test_access_refusals_send_nothing_and_cost_nothing(
    rt: Runtime, fake: FakeOpenRouter
) -> None:
    _ok(await run(rt, ADMIN, "/access channel off"))
    _ok(await run(rt, ADMIN, "/access user carol off"))
    carol = Invocation("console", "acme", "random", "carol")
    assert await _chat(rt, MEMBER) == ChatFailed(CHANNEL_OFF)
    assert await _chat(rt, carol) == ChatFailed(USER_OFF)
    assert fake.chat_requests == []
    async with rt.db.session() as session:
        assert (await session.execute(select(func.count(UsageRecord.id)))).scalar_one() == 0  # type: ignore[arg-type]
    assert isinstance(await _chat(rt, ELSEWHERE), ChatCompleted)
    _ok(await run(rt, ADMIN, "/access channel on"))
    _ok(await run(rt, ADMIN, "/access user carol on"))
    assert isinstance(await _chat(rt, MEMBER), ChatCompleted)
    assert isinstance(await _chat(rt, carol), ChatCompleted)


async def _audit_rows(rt: Runtime) -> list[AuditEntry]:
    async with rt.db.session() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())  # type: ignore[arg-type]


async def test_every_admin_change_is_audited_and_a_refused_one_is_not(rt: Runtime) -> None:
    for text in (
        "/models default openai/gpt-4o-mini",
        "/budget set 3 --user bob",
        '/prompt set =HYPERLINK("http://x")',
        "/access user bob off",
        "/apikey clear",
    ):
        _ok(await run(rt, ADMIN, text))
    for text in ("/models default nobody/nothing", "/budget set 5"):
        await run(rt, MEMBER if text.startswith("/budget") else ADMIN, text)
    rows = await _audit_rows(rt)
    assert [(r.action, r.target, r.old_value, r.new_value) for r in rows] == [
        ("apikey.set", "key:openrouter", None, mask_key(DEFAULT_KEY)),
        ("models.default", "workspace", STRONG, CHEAP),
        ("budget.set", "user:bob", None, "$3.00"),
        ("prompt.set", "workspace", None, '=HYPERLINK("http://x")'),
        ("access.user", "user:bob", "on", "off"),
        ("apikey.clear", "key:openrouter", mask_key(DEFAULT_KEY), None),
    ]
    assert all(r.platform == "console" and r.user_id == "alice" for r in rows)
    assert DEFAULT_KEY not in repr([(r.old_value, r.new_value) for r in rows])
    text = _ok(await run(rt, ADMIN, "/audit 2"))
    assert "apikey.clear" in text and "access.user" in text and "budget.set" not in text
    refused = await run(rt, MEMBER, "/audit")
    assert refused == [ErrorReply("Only workspace admins can see the audit log.", private=True)]


async def test_a_change_whose_audit_entry_cannot_be_written_does_not_happen(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry is written in the change's own transaction: no entry, no change."""

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the audit log is unwritable")

    monkeypatch.setattr(core_audit, "record", broken)
    [reply] = await run(rt, ADMIN, "/budget set 5")
    assert isinstance(reply, ErrorReply)
    async with rt.db.session() as session:
        assert (await session.execute(select(Budget))).first() is None
    monkeypatch.undo()
    _ok(await run(rt, ADMIN, "/budget set 5"))
    assert [r.action for r in await _audit_rows(rt)][-1] == "budget.set"


def test_routerbot_audit_exports_csv_and_json_spreadsheet_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'rb.db'}"

    async def prepare() -> None:
        async with FakeOpenRouter() as fake:
            async with spend_runtime(url, fake, tmp_path, Clock(NOW)) as runtime:
                _ok(await run(runtime, ADMIN, "/prompt set =1+1 and @everyone"))
                _ok(await run(runtime, ADMIN, "/budget set 2 --each-user"))

    asyncio.run(prepare())
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr("bot.logging.configure_logging", lambda level="INFO": None)

    assert cli.main(["audit", "--workspace", "console:acme", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(captured.out, newline="")))
    assert rows[0] == [
        "id",
        "created_at",
        "workspace",
        "platform",
        "user_id",
        "action",
        "target",
        "old_value",
        "new_value",
    ]
    assert [r[5] for r in rows[1:]] == ["apikey.set", "prompt.set", "budget.set"]
    assert rows[2][8] == "'=1+1 and @everyone"  # a formula stays text in a spreadsheet
    assert rows[2][1] == "2026-03-15T12:00:00+00:00" and rows[2][2] == "console:acme"
    assert "exported 3 audit entries" in captured.err

    assert (
        cli.main(["audit", "--workspace", "acme", "--format", "json", "--since", "2026-03-15"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert [d["new_value"] for d in data][1:] == ["=1+1 and @everyone", "$2.00"]
    assert cli.main(["audit", "--workspace", "acme", "--since", "2026-03-16"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # the header alone
    assert cli.main(["audit", "--workspace", "nobody"]) == 2
