"""ProviderService end to end: real storage, real adapters, a fake OpenRouter over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.config import Settings
from bot.core import commands as c
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    ErrorReply,
    Invocation,
    Reply,
    TextReply,
)
from bot.runtime import Runtime, build_runtime
from storage.crypto import generate_key
from storage.models import ProviderKey, UsageRecord
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter, Fault

SECOND_KEY = "sk-or-v1-second0000000000000000000000000000000000"


def settings_for(
    database_url: str, fake: FakeOpenRouter, tmp_path: Path, **extra: object
) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        routerbot_secret_key=SecretStr(generate_key()),
        openrouter_base_url=fake.base_url,
        fireworks_base_url=fake.base_url,
        routerbot_data_dir=tmp_path,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter(valid_keys=(DEFAULT_KEY, SECOND_KEY)) as server:
        yield server


@pytest.fixture
async def runtime(fake: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = settings_for(f"sqlite:///{tmp_path / 'rb.db'}", fake, tmp_path)
    rt, _ = await build_runtime(settings)
    try:
        yield rt
    finally:
        await rt.aclose()


ADMIN = Invocation("console", "acme", "general", "alice", is_admin=True)
MEMBER = Invocation("console", "acme", "general", "bob", is_admin=False)


async def run(rt: Runtime, ctx: Invocation, text: str) -> list[Reply]:
    return [r async for r in rt.dispatcher.run_text(ctx, text)]


def only(replies: list[Reply]) -> Reply:
    assert len(replies) == 1, replies
    return replies[0]


async def usage_rows(rt: Runtime) -> list[UsageRecord]:
    async with rt.db.session() as s:
        return list((await s.execute(select(UsageRecord).order_by(UsageRecord.id))).scalars())


async def test_new_workspace_starts_with_recommended_models(runtime: Runtime) -> None:
    reply = only(await run(runtime, MEMBER, "/models"))
    assert isinstance(reply, TextReply)
    assert "`anthropic/claude-3.5-sonnet` $3.00 / $15.00 — default" in reply.text
    assert "`openai/gpt-4o-mini`" in reply.text
    rec = only(await run(runtime, MEMBER, "/models recommended"))
    assert "accounts/fireworks/models/deepseek-v3" in rec.text  # type: ignore[union-attr]


async def test_chat_without_key_says_who_can_set_one(runtime: Runtime) -> None:
    reply = only(await run(runtime, MEMBER, "/chat hello"))
    assert isinstance(reply, ChatFailed)
    assert "admin" in reply.text
    assert "/apikey" in reply.text


async def test_apikey_set_verifies_masks_and_encrypts(runtime: Runtime, tmp_path: Path) -> None:
    reply = only(await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}"))
    assert isinstance(reply, TextReply)
    assert reply.private
    assert "sk-or-v1-" in reply.text and DEFAULT_KEY not in reply.text
    async with runtime.db.session() as s:
        row = (await s.execute(select(ProviderKey))).scalar_one()
    assert DEFAULT_KEY.encode() not in row.ciphertext
    await runtime.db.dispose()
    for path in tmp_path.glob("rb.db*"):
        assert DEFAULT_KEY.encode() not in path.read_bytes()


async def test_rejected_key_is_not_stored(runtime: Runtime) -> None:
    reply = only(await run(runtime, ADMIN, "/apikey set sk-or-v1-wrongwrongwrongwrong"))
    assert isinstance(reply, ErrorReply)
    assert "rejected" in reply.text and "nothing was stored" in reply.text
    assert "wrongwrong" not in reply.text
    status = only(await run(runtime, ADMIN, "/apikey status"))
    assert "No API key" in status.text  # type: ignore[union-attr]


async def test_members_cannot_change_keys_models_or_defaults(runtime: Runtime) -> None:
    for text in (
        f"/apikey set {DEFAULT_KEY}",
        "/apikey",
        "/apikey clear",
        "/apikey status",
        "/models add openai/gpt-4o-mini",
        "/models remove openai/gpt-4o-mini",
        "/models default openai/gpt-4o-mini",
        "/costs workspace",
    ):
        reply = only(await run(runtime, MEMBER, text))
        assert isinstance(reply, ErrorReply), text
        assert reply.private
        assert "Only workspace admins" in reply.text


async def test_routerbot_admins_setting_grants_admin(fake: FakeOpenRouter, tmp_path: Path) -> None:
    settings = settings_for(
        f"sqlite:///{tmp_path / 'rb.db'}", fake, tmp_path, routerbot_admins="console:bob"
    )
    rt, _ = await build_runtime(settings)
    try:
        reply = only(await run(rt, MEMBER, f"/apikey set {DEFAULT_KEY}"))
        assert isinstance(reply, TextReply)
    finally:
        await rt.aclose()


async def test_chat_streams_and_ends_with_footer_then_costs_add_up(
    runtime: Runtime, fake: FakeOpenRouter
) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    replies = await run(runtime, MEMBER, "/chat --model openai/gpt-4o-mini tell me a story")
    assert isinstance(replies[0], ChatStarted)
    deltas = [r.text for r in replies if isinstance(r, ChatDelta)]
    assert len(deltas) > 3
    done = replies[-1]
    assert isinstance(done, ChatCompleted)
    assert done.text == "".join(deltas) == "echo: tell me a story"
    assert done.footer.startswith("openai/gpt-4o-mini · ")
    assert " in · " in done.footer and " out · $" in done.footer
    assert done.cost.source == "reported"
    sent = fake.chat_requests[-1]
    assert sent.json["model"] == "openai/gpt-4o-mini"
    assert sent.headers["Authorization"] == f"Bearer {DEFAULT_KEY}"
    assert sent.json["stream"] is True
    rows = await usage_rows(runtime)
    assert len(rows) == 1
    assert rows[0].outcome == "ok" and rows[0].cost_nano == done.cost.nano
    costs = only(await run(runtime, MEMBER, "/costs"))
    assert isinstance(costs, TextReply)
    assert "1 chat" in costs.text and "`openai/gpt-4o-mini`" in costs.text and "bob" in costs.text


async def test_follow_up_sends_history(runtime: Runtime, fake: FakeOpenRouter) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    first = (await run(runtime, MEMBER, "/chat first question"))[-1]
    assert isinstance(first, ChatCompleted)
    await runtime.service.chats.attach_anchors(MEMBER, first.conversation_id, ["thread-1"])
    conv = await runtime.service.chats.find_conversation(MEMBER, "thread-1")
    assert conv is not None
    replies = [
        r async for r in runtime.service.chats.chat(MEMBER, "second question", conversation=conv)
    ]
    assert isinstance(replies[-1], ChatCompleted)
    messages = fake.chat_requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "first question"
    assert messages[1]["content"] == "echo: first question"
    # Another workspace cannot reach the conversation through the same anchor.
    other = Invocation("console", "other", "general", "eve")
    assert await runtime.service.chats.find_conversation(other, "thread-1") is None


async def test_anchors_given_while_streaming_are_written_with_the_turn(
    runtime: Runtime, fake: FakeOpenRouter
) -> None:
    """A front-end learns its message id only after posting: an anchor added to the list on
    ``ChatStarted`` is written in the turn's transaction, and leads nowhere else."""
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    anchors: list[str] = ["thread-root"]
    replies: list[Reply] = []
    async for reply in runtime.dispatcher.run(MEMBER, c.Chat("first question"), anchors=anchors):
        if isinstance(reply, ChatStarted):
            anchors.append("posted-message")
        replies.append(reply)
    done = replies[-1]
    assert isinstance(done, ChatCompleted)
    for anchor in ("thread-root", "posted-message"):
        conv = await runtime.service.chats.find_conversation(MEMBER, anchor)
        assert conv is not None and conv.id == done.conversation_id
    other = Invocation("console", "other", "general", "eve")
    assert await runtime.service.chats.find_conversation(other, "posted-message") is None
    # A follow-up through the anchor sends the history, and may anchor its own message.
    conv = await runtime.service.chats.find_conversation(MEMBER, "posted-message")
    again = [
        r
        async for r in runtime.service.chats.chat(
            MEMBER, "second question", conversation=conv, anchors=["reply-message"]
        )
    ]
    assert isinstance(again[-1], ChatCompleted)
    assert again[-1].conversation_id == done.conversation_id
    assert [m["role"] for m in fake.chat_requests[-1].json["messages"]] == [
        "user",
        "assistant",
        "user",
    ]
    followed = await runtime.service.chats.find_conversation(MEMBER, "reply-message")
    assert followed is not None and followed.id == done.conversation_id


async def test_a_chat_that_fails_before_any_text_anchors_nothing(
    runtime: Runtime, fake: FakeOpenRouter
) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    fake.script(Fault.http(503), times=None)
    replies = [
        r async for r in runtime.dispatcher.run(MEMBER, c.Chat("hi"), anchors=["root-message"])
    ]
    assert isinstance(replies[-1], ChatFailed)
    assert await runtime.service.chats.find_conversation(MEMBER, "root-message") is None
    assert (await usage_rows(runtime))[-1].outcome == "error"


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.http(402), "credits"),
        (Fault.http(401), "rejected the API key"),
        (Fault.http(403), "refused"),
        (Fault.http(429, retry_after="30"), "30 s"),
        (Fault.http(503), "right now"),
    ],
)
async def test_failures_before_first_token_cost_nothing(
    runtime: Runtime, fake: FakeOpenRouter, fault: Fault, words: str
) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    fake.script(fault, times=None)
    reply = only(
        [r for r in await run(runtime, MEMBER, "/chat hi") if not isinstance(r, ChatStarted)]
    )
    assert isinstance(reply, ChatFailed)
    assert words in reply.text
    assert "Nothing was charged" in reply.text
    assert "\n" not in reply.text
    rows = await usage_rows(runtime)
    assert rows[-1].outcome == "error" and rows[-1].cost_nano == 0


@pytest.mark.parametrize(
    "fault", [Fault.error_chunk(after=3, code=502), Fault.drop(after=3), Fault.malformed(after=3)]
)
async def test_mid_stream_failure_keeps_partial_answer(
    runtime: Runtime, fake: FakeOpenRouter, fault: Fault
) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    fake.script(fault)
    replies = await run(runtime, MEMBER, "/chat one two three four five six")
    done = replies[-1]
    assert isinstance(done, ChatCompleted)
    assert done.cut_off
    assert done.text and done.text == "".join(r.text for r in replies if isinstance(r, ChatDelta))
    assert any("cut off" in n for n in done.notices)
    rows = await usage_rows(runtime)
    assert rows[-1].outcome == "cut_off"
    # The console keeps working: the next chat succeeds.
    again = (await run(runtime, MEMBER, "/chat hello again"))[-1]
    assert isinstance(again, ChatCompleted) and not again.cut_off


async def test_missing_reported_cost_is_computed_and_marked(
    runtime: Runtime, fake: FakeOpenRouter
) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    fake.script(Fault.no_cost())
    done = (await run(runtime, MEMBER, "/chat --model openai/gpt-4o-mini price me"))[-1]
    assert isinstance(done, ChatCompleted)
    assert done.cost.source == "computed"
    assert "≈$" in done.footer


async def test_missing_usage_means_cost_unknown(runtime: Runtime, fake: FakeOpenRouter) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    fake.script(Fault.no_usage())
    done = (await run(runtime, MEMBER, "/chat no usage please"))[-1]
    assert isinstance(done, ChatCompleted)
    assert "cost unknown" in done.footer


async def test_model_not_allowlisted(runtime: Runtime) -> None:
    await run(runtime, ADMIN, f"/apikey set {DEFAULT_KEY}")
    reply = only(await run(runtime, MEMBER, "/chat --model openai/o1-pro hi"))
    assert isinstance(reply, ChatFailed)
    assert "`openai/o1-pro` is not allowed" in reply.text and "/models" in reply.text


async def test_models_add_looks_up_pricing_and_rejects_unknown(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    fake.strict_models = True
    settings = settings_for(f"sqlite:///{tmp_path / 'rb.db'}", fake, tmp_path)
    rt, _ = await build_runtime(settings)
    try:
        added = only(await run(rt, ADMIN, "/models add meta-llama/llama-3.1-8b-instruct:free"))
        assert isinstance(added, TextReply) and "$0" in added.text
        unknown = only(await run(rt, ADMIN, "/models add nobody/nothing-7b"))
        assert isinstance(unknown, ErrorReply)
        assert "`nobody/nothing-7b`" in unknown.text
        only(await run(rt, ADMIN, "/models default meta-llama/llama-3.1-8b-instruct:free"))
        listing = only(await run(rt, ADMIN, "/models"))
        assert "`meta-llama/llama-3.1-8b-instruct:free` $0" in listing.text  # type: ignore[union-attr]
        assert "free` $0.00 / $0.00 — default" in listing.text or "— default" in listing.text  # type: ignore[union-attr]
        removed = only(await run(rt, ADMIN, "/models remove meta-llama/llama-3.1-8b-instruct:free"))
        assert "was the default" in removed.text  # type: ignore[union-attr]
        failed = only(await run(rt, MEMBER, "/chat hi"))
        assert isinstance(failed, ChatFailed) and "no default model" in failed.text
    finally:
        await rt.aclose()


async def test_workspaces_never_cross(
    database_url: str, fake: FakeOpenRouter, tmp_path: Path
) -> None:
    from storage.migrate import upgrade

    await upgrade(database_url)
    rt, _ = await build_runtime(settings_for(database_url, fake, tmp_path))
    try:
        a_admin = Invocation("console", "team-a", "general", "alice", is_admin=True)
        b_admin = Invocation("console", "team-b", "general", "bruno", is_admin=True)
        await run(rt, a_admin, f"/apikey set {DEFAULT_KEY}")
        await run(rt, b_admin, f"/apikey set {SECOND_KEY}")
        await run(rt, a_admin, "/models remove deepseek/deepseek-chat")
        a_done = (await run(rt, a_admin, "/chat from a"))[-1]
        b_done = (await run(rt, b_admin, "/chat from b"))[-1]
        assert isinstance(a_done, ChatCompleted) and isinstance(b_done, ChatCompleted)
        keys = {
            r.json["messages"][-1]["content"]: r.headers["Authorization"]
            for r in fake.chat_requests
        }
        assert keys == {"from a": f"Bearer {DEFAULT_KEY}", "from b": f"Bearer {SECOND_KEY}"}
        assert "deepseek" in only(await run(rt, b_admin, "/models")).text  # type: ignore[union-attr]
        assert "deepseek" not in only(await run(rt, a_admin, "/models")).text  # type: ignore[union-attr]
        a_costs = only(await run(rt, a_admin, "/costs workspace"))
        assert "bruno" not in a_costs.text and "alice" in a_costs.text  # type: ignore[union-attr]
    finally:
        await rt.aclose()


async def test_budget_amounts_parse_exactly() -> None:
    assert c.parse_usd("$1,234.50") == Decimal("1234.50")
