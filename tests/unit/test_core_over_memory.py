"""The core over in-memory ports: the chat path, budgets, the allowlist and permissions,
with no database and no HTTP (tests/unit/core_support.py builds it)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from adapters.base import ModelPricing, StreamFailed, TextDelta, Usage
from adapters.errors import CutOffError, RateLimitedError
from bot.core import commands as c
from bot.core import permissions
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    CostsReply,
    ErrorReply,
    Invocation,
    TextReply,
)
from tests.unit.core_support import (
    ADMIN,
    CHEAP,
    KEY,
    MEMBER,
    STRONG,
    Core,
    ScriptedProvider,
    build_core,
)


async def _with_key() -> Core:
    core = build_core()
    replies = await core.run(ADMIN, f"/apikey set {KEY}")
    assert isinstance(replies[0], TextReply) and "Saved" in replies[0].text, replies
    return core


# -- the chat path ------------------------------------------------------------------------------


async def test_a_chat_streams_records_and_ends_with_the_footer() -> None:
    core = await _with_key()
    replies = await core.run(MEMBER, "/chat hello")
    assert isinstance(replies[0], ChatStarted) and replies[0].model == STRONG
    assert [r.text for r in replies if isinstance(r, ChatDelta)] == ["Hello", "there."]
    done = replies[-1]
    assert isinstance(done, ChatCompleted)
    assert done.text == "Hellothere."
    assert done.footer.startswith(f"{STRONG} · 10 in · 5 out · $0.0001")
    ledger = core.store.data.ledger
    assert [(r.outcome, r.cost_nano, r.cost_source, r.user_id) for r in ledger] == [
        ("ok", 100_000, "reported", "bob")
    ]
    assert ledger[0].conversation_id == done.conversation_id


async def test_a_follow_up_sends_the_history_with_the_conversations_model() -> None:
    core = await _with_key()
    first = (await core.run(MEMBER, f"/chat --model {CHEAP} first question"))[-1]
    assert isinstance(first, ChatCompleted)
    conversation = await core.dispatcher.conversation(MEMBER, first.conversation_id)
    assert conversation is not None and conversation.model == CHEAP
    replies = [r async for r in core.dispatcher.follow_up(MEMBER, conversation, "and then?")]
    assert isinstance(replies[-1], ChatCompleted)
    sent = core.provider.requests[-1]
    assert sent.model == CHEAP
    assert [(m.role, m.content) for m in sent.messages] == [
        ("user", "first question"),
        ("assistant", "Hellothere."),
        ("user", "and then?"),
    ]


async def test_a_failure_before_any_text_is_one_sentence_and_costs_nothing() -> None:
    core = await _with_key()
    core.provider.scripts.append([StreamFailed(RateLimitedError(retry_after=30), partial=False)])
    replies = await core.run(MEMBER, "/chat hello")
    failed = replies[-1]
    assert isinstance(failed, ChatFailed)
    assert failed.text.endswith("Nothing was charged.")
    assert "30 s" in failed.text
    row = core.store.data.ledger[-1]
    assert (row.outcome, row.cost_nano, row.cost_source, row.error_kind) == (
        "error",
        0,
        "none",
        "rate_limited",
    )


async def test_an_answer_cut_off_keeps_its_text_and_says_so() -> None:
    core = await _with_key()
    core.provider.scripts.append(
        [
            TextDelta("Half an"),
            StreamFailed(CutOffError(), partial=True, usage=Usage(10, 2, cost=Decimal("0.00002"))),
        ]
    )
    done = (await core.run(MEMBER, "/chat hello"))[-1]
    assert isinstance(done, ChatCompleted) and done.cut_off
    assert done.text == "Half an"
    assert done.notices and done.notices[0].startswith("⚠ The answer was cut off")
    assert core.store.data.ledger[-1].outcome == "cut_off"


async def test_a_chat_abandoned_mid_stream_is_on_the_ledger_with_unknown_cost() -> None:
    core = await _with_key()
    replies = core.dispatcher.run(MEMBER, c.Chat(prompt="hello"))
    assert isinstance(await anext(replies), ChatStarted)
    assert isinstance(await anext(replies), ChatDelta)
    await replies.aclose()
    row = core.store.data.ledger[-1]
    assert (row.outcome, row.cost_nano, row.cost_source) == ("cancelled", None, "unknown")


async def test_no_key_and_no_fallback_refuses_before_the_provider() -> None:
    core = build_core()
    failed = (await core.run(MEMBER, "/chat hello"))[-1]
    assert isinstance(failed, ChatFailed) and "/apikey" in failed.text
    assert core.provider.requests == []
    assert core.store.data.ledger == []


# -- budgets ------------------------------------------------------------------------------------


async def test_a_spent_limit_refuses_chats_and_sends_nothing() -> None:
    core = await _with_key()
    core.provider.scripts = [ScriptedProvider.answer(cost="0.05") for _ in range(3)]
    set_reply = (await core.run(ADMIN, "/budget set 0.10"))[0]
    assert isinstance(set_reply, TextReply) and "monthly budget is now $0.10" in set_reply.text
    asked = len(core.provider.requests)
    await core.run(MEMBER, "/chat hello")
    await core.run(MEMBER, "/chat hello")
    refused = (await core.run(MEMBER, "/chat hello"))[-1]
    assert isinstance(refused, ChatFailed)
    assert "has used its $0.1000 budget" in refused.text
    assert len(core.provider.requests) == asked + 2
    assert core.store.data.holds == {}


async def test_the_80_percent_notice_is_given_once_a_month() -> None:
    core = await _with_key()
    core.provider.scripts = [ScriptedProvider.answer(cost="0.2") for _ in range(5)]
    await core.run(ADMIN, "/budget set 1")
    notices = []
    for _ in range(5):
        done = (await core.run(MEMBER, "/chat hello"))[-1]
        assert isinstance(done, ChatCompleted)
        notices.extend(done.notices)
    assert len(notices) == 1 and "80%" in notices[0], notices


# -- the allowlist ------------------------------------------------------------------------------


async def test_admins_manage_the_allowlist_and_removing_the_default_clears_it() -> None:
    core = await _with_key()
    core.provider.known_models["x/new"] = ModelPricing(Decimal(1), Decimal(2))
    added = (await core.run(ADMIN, "/models add x/new"))[0]
    assert isinstance(added, TextReply) and added.text.startswith("Added `x/new`")
    unknown = (await core.run(ADMIN, "/models add x/unknown"))[0]
    assert isinstance(unknown, ErrorReply) and "does not know the model `x/unknown`" in unknown.text
    refused = (await core.run(ADMIN, "/models default y/off-list"))[0]
    assert isinstance(refused, ErrorReply) and "add it first" in refused.text
    removed = (await core.run(ADMIN, f"/models remove {STRONG}"))[0]
    assert isinstance(removed, TextReply) and "It was the default" in removed.text
    listing = (await core.run(MEMBER, "/models"))[0]
    assert isinstance(listing, TextReply)
    assert "No default model is set" in listing.text and STRONG not in listing.text


# -- permissions --------------------------------------------------------------------------------

MEMBER_COMMANDS = [
    "/models add x/new",
    "/models remove openai/gpt-4o-mini",
    "/models default openai/gpt-4o-mini",
    f"/apikey set {KEY}",
    "/apikey",
    "/apikey status",
    "/apikey clear",
    "/budget",
    "/budget set 5",
    "/budget clear",
    "/costs workspace",
    "/budget set 5 --user bob",
    "/budget set 2 --each-user",
    "/budget clear --each-user",
    "/models default openai/gpt-4o-mini --channel",
    "/prompt set Be brief.",
    "/prompt clear --channel",
    "/access channel off",
    "/access user bob off",
    "/audit",
]


@pytest.mark.parametrize("text", MEMBER_COMMANDS)
async def test_members_are_refused_every_admin_action_and_nothing_changes(text: str) -> None:
    core = build_core()
    before = (
        repr(core.store.data.allowlists),
        dict(core.store.data.keys),
        dict(core.store.data.budgets),
    )
    command = c.parse(text)
    action = permissions.admin_action(command)
    assert action is not None
    replies = [r async for r in core.dispatcher.run(MEMBER, command)]
    assert replies == [ErrorReply(f"Only workspace admins can {action}.", private=True)]
    after = (
        repr(core.store.data.allowlists),
        dict(core.store.data.keys),
        dict(core.store.data.budgets),
    )
    assert before == after


async def test_listed_admins_count_as_admins() -> None:
    core = build_core()
    core.service.deps.settings = core.service.settings.model_copy(
        update={"routerbot_admins": "console:bob"}
    )
    assert permissions.is_admin(core.service.settings, MEMBER)
    assert not permissions.is_admin(core.service.settings, Invocation("slack", "T", "C", "bob"))


async def test_tenants_never_see_each_others_conversations() -> None:
    core = await _with_key()
    done = (await core.run(MEMBER, "/chat hello"))[-1]
    assert isinstance(done, ChatCompleted)
    await core.dispatcher.remember(MEMBER, done.conversation_id, ["thread-1"])
    other = Invocation("console", "other", "general", "bob")
    assert await core.dispatcher.find_conversation(other, "thread-1") is None
    assert await core.dispatcher.conversation(other, done.conversation_id) is None


async def test_concurrent_chats_under_a_limit_hold_and_release_everything() -> None:
    core = await _with_key()
    await core.run(ADMIN, "/budget set 1")
    results = await asyncio.gather(*(core.run(MEMBER, "/chat hi") for _ in range(20)))
    assert all(isinstance(r[-1], ChatCompleted) for r in results)
    assert core.store.data.holds == {}
    assert len(core.store.data.ledger) == 20


async def test_costs_me_charts_only_the_callers_own_days() -> None:
    core = await _with_key()
    core.provider.scripts = [ScriptedProvider.answer(cost="0.25"), ScriptedProvider.answer()]
    await core.run(ADMIN, "/chat for alice")  # $0.25, alice
    await core.run(MEMBER, "/chat for bob")  # $0.0001, bob
    [mine] = [r async for r in core.dispatcher.run(MEMBER, c.Costs(scope="me"))]
    assert isinstance(mine, CostsReply) and mine.chart is not None
    assert [nano for _, nano in mine.chart.days if nano] == [100_000]
