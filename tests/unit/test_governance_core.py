"""Governance over in-memory ports: limits on people, admission without early refusal, the
answer's cap and its notice, budget notices and who hears them, channel policies, access, and
the audit log (SPEC §5, §5a, §5b). No database, no HTTP."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import ChatMessage, ModelPricing, StreamFinished, TextDelta, Usage
from bot.core import commands as c
from bot.core import permissions
from bot.core.errors import BudgetExceeded
from bot.core.policies import CHANNEL_OFF, USER_OFF
from bot.core.ports import UsageEntry
from bot.core.replies import (
    ChatCompleted,
    ChatFailed,
    ErrorReply,
    Invocation,
    Notice,
    Reply,
    TextReply,
)
from bot.core.spend.limits import (
    ALLOWANCE_FLOOR_TOKENS,
    ANSWER_CEILING_TOKENS,
    MIN_ANSWER_TOKENS,
    Ask,
    admit,
    estimate_prompt_tokens,
    tokens_cost_nano,
)
from bot.core.spend.texts import BudgetState
from tests.unit.core_support import (
    ADMIN,
    CHEAP,
    KEY,
    MARCH,
    MEMBER,
    STRONG,
    Core,
    ScriptedProvider,
    build_core,
)

CAROL = Invocation("console", "acme", "general", "carol")
BOB_ELSEWHERE = Invocation("console", "acme", "random", "bob")
#: STRONG's prices (see core_support.model_settings) in nano-USD per 1M tokens.
STRONG_IN, STRONG_OUT = 3_000_000_000, 15_000_000_000


async def _core() -> Core:
    core = build_core()
    assert "Saved" in _text(await core.run(ADMIN, f"/apikey set {KEY}"))
    return core


def _text(replies: list[Reply]) -> str:
    return "\n".join(r.text for r in replies if isinstance(r, TextReply | ErrorReply))


def _last(replies: list[Reply]) -> ChatCompleted | ChatFailed:
    last = replies[-1]
    assert isinstance(last, ChatCompleted | ChatFailed), replies
    return last


def _notices(replies: list[Reply]) -> list[Notice]:
    return [r for r in replies if isinstance(r, Notice)]


async def _seed(core: Core, ctx: Invocation, nano: int, when: datetime = MARCH) -> None:
    """A past chat of ``nano`` on the ledger, by ``ctx``'s user in ``ctx``'s channel."""
    ws_id = await core.service.workspace_id(ctx)
    async with core.store.transaction() as tx:
        await tx.usage.record(
            UsageEntry(
                workspace_id=ws_id,
                channel_id=ctx.channel_id,
                user_id=ctx.user_id,
                provider="openrouter",
                model_requested=STRONG,
                model_served=None,
                prompt_tokens=1,
                cached_tokens=0,
                completion_tokens=1,
                reasoning_tokens=0,
                cost_nano=nano,
                cost_source="reported",
                generation_id=None,
                latency_ms=1,
                outcome="ok",
                error_kind=None,
                conversation_id=None,
                created_at=when,
            )
        )


def _needed_for(prompt: str) -> int:
    """What a chat of ``prompt`` to STRONG needs left: its prompt and a minimum answer."""
    tokens = estimate_prompt_tokens([ChatMessage(role="user", content=prompt)])
    return tokens_cost_nano(tokens, STRONG_IN) + tokens_cost_nano(MIN_ANSWER_TOKENS, STRONG_OUT)


# -- admission: no early refusal, the cap, the hold ---------------------------------------------


async def test_a_chat_is_admitted_while_its_prompt_and_a_short_answer_fit() -> None:
    """The $0.10 case of the issue: nothing spent, so a chat runs (the old fixed estimate
    refused it); and at the boundary, exactly the prompt plus MIN_ANSWER_TOKENS suffices."""
    core = await _core()
    await core.run(ADMIN, "/budget set 0.10")
    assert isinstance(_last(await core.run(MEMBER, "/chat hello")), ChatCompleted)

    core = await _core()
    await core.run(ADMIN, "/budget set 1")
    await _seed(core, CAROL, 1_000_000_000 - _needed_for("hello"))
    done = _last(await core.run(MEMBER, "/chat hello"))
    assert isinstance(done, ChatCompleted)
    assert core.provider.requests[-1].max_completion_tokens == MIN_ANSWER_TOKENS

    core = await _core()
    await core.run(ADMIN, "/budget set 1")
    await _seed(core, CAROL, 1_000_000_000 - _needed_for("hello") + 1)
    asked = len(core.provider.requests)
    refused = _last(await core.run(MEMBER, "/chat hello"))
    assert isinstance(refused, ChatFailed)
    assert "too close to its $1.00 budget" in refused.text and "needs at least" in refused.text
    assert len(core.provider.requests) == asked and core.store.data.holds == {}


async def test_the_cap_fits_the_smallest_amount_left_and_says_so_when_it_stops_an_answer() -> None:
    core = await _core()
    await core.run(ADMIN, "/budget set 100")
    await core.run(ADMIN, "/budget set 0.01 --channel")
    core.provider.scripts.append(
        [
            TextDelta("a long"),
            StreamFinished(Usage(9, 1300, cost=Decimal("0.0195")), None, "g", "length"),
        ]
    )
    done = _last(await core.run(MEMBER, "/chat hello"))
    assert isinstance(done, ChatCompleted)
    sent = core.provider.requests[-1].max_completion_tokens
    # The channel's $0.01 binds: (0.01 - prompt) / $15 per 1M tokens.
    prompt = tokens_cost_nano(estimate_prompt_tokens([ChatMessage("user", "hello")]), STRONG_IN)
    assert sent == (10_000_000 - prompt) * 1_000_000 // STRONG_OUT == 664
    assert done.notices[0].startswith(f"⚠ The answer stopped at {sent:,} tokens to stay within")
    assert "this channel's $0.0100 monthly budget" in done.notices[0]
    # The hold was that worst case, and it is released.
    assert core.store.data.holds == {}


async def test_a_generous_limit_asks_for_the_ceiling_and_an_answer_stopped_there_is_not_blamed() -> (
    None
):
    core = await _core()
    await core.run(ADMIN, "/budget set 1000")
    core.provider.scripts.append([TextDelta("x"), StreamFinished(Usage(9, 5), None, "g", "length")])
    done = _last(await core.run(MEMBER, "/chat hello"))
    assert isinstance(done, ChatCompleted) and done.notices == ()
    assert core.provider.requests[-1].max_completion_tokens == ANSWER_CEILING_TOKENS


async def test_without_limits_nothing_caps_the_answer() -> None:
    core = await _core()
    await core.run(MEMBER, "/chat hello")
    assert core.provider.requests[-1].max_completion_tokens is None


async def test_a_model_without_a_price_is_refused_under_a_limit_only() -> None:
    core = await _core()
    core.provider.known_models["x/unpriced"] = ModelPricing(None, None)
    assert "Added" in _text(await core.run(ADMIN, "/models add x/unpriced"))
    assert isinstance(_last(await core.run(MEMBER, "/chat -m x/unpriced hi")), ChatCompleted)
    await core.run(ADMIN, "/budget set 5 --user bob")
    refused = _last(await core.run(MEMBER, "/chat -m x/unpriced hi"))
    assert isinstance(refused, ChatFailed)
    assert refused.text.startswith("`x/unpriced` has no known price")
    assert "your $5.00 monthly budget" in refused.text
    assert isinstance(_last(await core.run(CAROL, "/chat -m x/unpriced hi")), ChatCompleted)


def _state(limit: int, spent: int, held: int) -> BudgetState:
    return BudgetState("workspace", None, limit, spent, held, MARCH)


@given(
    limits=st.lists(
        st.tuples(st.integers(1, 10**12), st.integers(0, 10**12), st.integers(0, 10**11)),
        min_size=1,
        max_size=3,
    ),
    prompt=st.integers(0, 10**9),
    price=st.integers(0, 10**11),
    ceiling=st.integers(1, 20_000),
)
def test_admission_never_holds_more_than_the_smallest_amount_left(
    limits: list[tuple[int, int, int]], prompt: int, price: int, ceiling: int
) -> None:
    states = [_state(*limit) for limit in limits]
    left = min(s.left_nano for s in states)
    try:
        admission = admit(states, Ask(prompt, price, ceiling))
    except BudgetExceeded:
        room = (left - prompt) * 1_000_000 // price if price and left > prompt else None
        assert (
            any(s.exhausted for s in states)
            or left <= 0
            or prompt > left
            or (room is not None and room < MIN_ANSWER_TOKENS)
        )
        return
    assert not any(s.exhausted for s in states)
    assert admission.hold_nano <= left
    if price:
        assert admission.max_tokens is not None
        assert admission.max_tokens >= min(MIN_ANSWER_TOKENS, ceiling)
        assert admission.max_tokens <= ceiling
        # The worst case of the answer is inside the hold.
        assert prompt + admission.max_tokens * price / 1_000_000 <= admission.hold_nano
        assert admission.max_tokens >= min(ALLOWANCE_FLOOR_TOKENS, ceiling) or (
            prompt + tokens_cost_nano(admission.max_tokens + 1, price) > left
        )


# -- limits on people ----------------------------------------------------------------------------


async def test_a_persons_own_limit_overrides_the_each_user_limit() -> None:
    core = await _core()
    core.provider.scripts = [ScriptedProvider.answer(cost="0.10") for _ in range(6)]
    assert "Everyone without a limit" in _text(
        await core.run(ADMIN, "/budget set 0.10 --each-user")
    )
    assert "bob's monthly budget is now $1.00" in _text(
        await core.run(ADMIN, "/budget set 1 --user bob")
    )
    assert isinstance(_last(await core.run(CAROL, "/chat hi")), ChatCompleted)
    refused = _last(await core.run(CAROL, "/chat hi"))
    assert isinstance(refused, ChatFailed)
    assert refused.text.startswith("You have used the $0.1000 each-person budget for March 2026")
    # bob's own $1 applies to him instead, in every channel.
    for ctx in (MEMBER, BOB_ELSEWHERE, MEMBER):
        assert isinstance(_last(await core.run(ctx, "/chat hi")), ChatCompleted)
    # Clearing bob's own limit puts him under the each-user one, already used up.
    assert "Removed the monthly budget of bob" in _text(
        await core.run(ADMIN, "/budget clear --user bob")
    )
    assert "each-person budget" in _last(await core.run(MEMBER, "/chat hi")).text


async def test_costs_me_shows_ones_own_spend_and_limit() -> None:
    core = await _core()
    core.provider.scripts = [ScriptedProvider.answer(cost="0.25")]
    await core.run(ADMIN, "/budget set 1 --user bob")
    await core.run(MEMBER, "/chat hi")
    await core.run(CAROL, "/chat hi")
    [mine] = await core.run(MEMBER, "/costs me")
    assert isinstance(mine, TextReply) and mine.private
    assert mine.text.startswith("Your spend for March 2026 (calendar month, UTC): $0.2500 · 1 chat")
    assert "Your monthly limit (your own limit, March 2026): $0.2500 of $1.00 (25%)" in mine.text
    [theirs] = await core.run(CAROL, "/costs me")
    assert "$0.0001 · 1 chat" in theirs.text and "You have no monthly limit." in theirs.text


async def test_budget_overview_lists_the_limits_that_apply_here_then_people() -> None:
    core = await _core()
    await core.run(ADMIN, "/budget set 50")
    await core.run(ADMIN, "/budget set 2 --each-user")
    await core.run(ADMIN, "/budget set 5 --user bob")
    text = _text(await core.run(ADMIN, "/budget"))
    assert "• Workspace: $0.00 of $50.00 (0%)" in text
    assert "• This channel: no limit" in text
    assert "• You (each-person limit): $0.00 of $2.00 (0%)" in text
    assert "• bob: $0.00 of $5.00 (0%)" in text


# -- notices ------------------------------------------------------------------------------------


async def test_a_persons_limit_tells_them_privately_and_the_admin_who_set_it_directly() -> None:
    core = await _core()
    core.provider.scripts = [ScriptedProvider.answer(cost=c) for c in ("0.8", "0.1", "0.1")]
    await core.run(ADMIN, "/budget set 1 --user bob")
    first = await core.run(MEMBER, "/chat hi")
    assert _notices(first) == [
        Notice(
            "⚠ You have used 80% of your $1.00 monthly budget ($0.8000 spent in March 2026, UTC).",
            "asker",
        ),
        Notice(
            "⚠ A budget you set has reached 80%: bob's $1.00 monthly budget ($0.8000 spent in March 2026, UTC).",
            "direct",
            "alice",
        ),
    ]
    assert _last(first).notices == ()  # nothing for the channel
    assert _notices(await core.run(MEMBER, "/chat hi")) == []  # 90 %: told already
    full = _notices(await core.run(MEMBER, "/chat hi"))
    assert [(n.audience, n.text.split(" (")[0]) for n in full] == [
        ("asker", "⚠ You have used your $1.00 monthly budget"),
        ("direct", "⚠ A budget you set is used up: bob's $1.00 monthly budget"),
    ]
    assert isinstance(_last(await core.run(MEMBER, "/chat hi")), ChatFailed)
    core.clock.now = datetime(2026, 4, 1, 0, 1)  # a new month: chats and notices again
    assert isinstance(_last(await core.run(MEMBER, "/chat hi")), ChatCompleted)


async def test_each_user_notices_come_once_per_person() -> None:
    core = await _core()
    core.provider.scripts = [ScriptedProvider.answer(cost="0.9") for _ in range(3)]
    await core.run(ADMIN, "/budget set 1 --each-user")
    for ctx in (MEMBER, CAROL):
        [asker, admin] = _notices(await core.run(ctx, "/chat hi"))
        assert asker.audience == "asker" and "the $1.00 each-person monthly budget" in asker.text
        assert (
            admin.user_id == "alice"
            and f"each-person monthly budget, for {ctx.user_id}" in admin.text
        )


async def test_a_workspace_limit_used_up_is_announced_in_the_channel_once() -> None:
    core = await _core()
    core.provider.scripts = [ScriptedProvider.answer(cost="0.6") for _ in range(2)]
    await core.run(ADMIN, "/budget set 1")
    first = await core.run(MEMBER, "/chat hi")
    assert _notices(first) == [] and _last(first).notices == ()
    second = await core.run(CAROL, "/chat hi")
    [channel, admin] = _notices(second)
    assert channel.audience == "channel" and channel.text.startswith(
        "⚠ This workspace has used its $1.00"
    )
    assert admin == Notice(admin.text, "direct", "alice")
    assert "the workspace's $1.00 monthly budget" in admin.text


# -- channel policies ---------------------------------------------------------------------------


async def test_the_channels_prompt_else_the_workspaces_goes_first() -> None:
    core = await _core()
    await core.run(ADMIN, "/prompt set Be brief.")
    await core.run(ADMIN, "/prompt set --channel Answer in French.")

    async def system_of(ctx: Invocation) -> list[tuple[str, str]]:
        await core.run(ctx, "/chat hello")
        return [(m.role, m.content) for m in core.provider.requests[-1].messages]

    assert await system_of(MEMBER) == [("system", "Answer in French."), ("user", "hello")]
    assert await system_of(BOB_ELSEWHERE) == [("system", "Be brief."), ("user", "hello")]
    shown = _text(await core.run(MEMBER, "/prompt"))
    assert "> Answer in French." in shown and "> Be brief." in shown
    assert "Removed the system prompt of this channel" in _text(
        await core.run(ADMIN, "/prompt clear --channel")
    )
    assert (await system_of(MEMBER))[0] == ("system", "Be brief.")
    await core.run(ADMIN, "/prompt clear")
    assert await system_of(MEMBER) == [("user", "hello")]


async def test_the_channels_default_model_else_the_workspaces_and_a_conversation_keeps_its_own() -> (
    None
):
    core = await _core()
    before = _last(await core.run(MEMBER, "/chat first"))
    assert isinstance(before, ChatCompleted) and before.model == STRONG
    assert "this channel's default model" in _text(
        await core.run(ADMIN, f"/models default {CHEAP} --channel")
    )
    assert _last(await core.run(MEMBER, "/chat hi")).model == CHEAP  # type: ignore[union-attr]
    assert _last(await core.run(BOB_ELSEWHERE, "/chat hi")).model == STRONG  # type: ignore[union-attr]
    assert _last(await core.run(MEMBER, f"/chat -m {STRONG} hi")).model == STRONG  # type: ignore[union-attr]
    conversation = await core.dispatcher.conversation(MEMBER, before.conversation_id)
    replies = [r async for r in core.dispatcher.follow_up(MEMBER, conversation, "more")]
    assert _last(replies).model == STRONG  # type: ignore[union-attr]
    # A model leaving the allowlist leaves the channels that defaulted to it too.
    await core.run(ADMIN, f"/models remove {CHEAP}")
    assert _last(await core.run(MEMBER, "/chat hi")).model == STRONG  # type: ignore[union-attr]
    refused = _text(await core.run(ADMIN, "/models default y/off-list --channel"))
    assert "not on this workspace's allowlist" in refused


# -- access --------------------------------------------------------------------------------------


async def test_access_off_refuses_chats_with_one_sentence_sending_and_charging_nothing() -> None:
    core = await _core()
    assert "now off" in _text(await core.run(ADMIN, "/access channel off"))
    asked, rows = len(core.provider.requests), len(core.store.data.ledger)
    for ctx in (MEMBER, ADMIN):
        refused = _last(await core.run(ctx, "/chat hi"))
        assert refused == ChatFailed(CHANNEL_OFF)
    assert isinstance(_last(await core.run(BOB_ELSEWHERE, "/chat hi")), ChatCompleted)
    asked += 1
    assert "Chats in this channel: off. Your chats in this workspace: on." in _text(
        await core.run(MEMBER, "/access")
    )
    await core.run(ADMIN, "/access channel on")
    await core.run(ADMIN, "/access user bob off")
    for ctx in (MEMBER, BOB_ELSEWHERE):
        assert _last(await core.run(ctx, "/chat hi")) == ChatFailed(USER_OFF)
    assert len(core.provider.requests) == asked and len(core.store.data.ledger) == rows + 1
    # Refused chats, not commands: bob still sees his own spend.
    assert "Your spend for March 2026" in _text(await core.run(MEMBER, "/costs me"))
    assert "People whose chats are off: bob." in _text(await core.run(ADMIN, "/access"))
    assert "already off" in _text(await core.run(ADMIN, "/access user bob off"))


async def test_admins_are_never_locked_out_of_commands() -> None:
    core = await _core()
    await core.run(ADMIN, "/access user alice off")
    await core.run(ADMIN, "/access channel off")
    assert _last(await core.run(ADMIN, "/chat hi")) == ChatFailed(USER_OFF)
    for text in ("/budget set 5", "/prompt set Hi", "/models default openai/gpt-4o-mini", "/audit"):
        assert all(isinstance(r, TextReply) for r in await core.run(ADMIN, text)), text
    assert "now on" in _text(await core.run(ADMIN, "/access user alice on"))
    assert "now on" in _text(await core.run(ADMIN, "/access channel on"))
    assert isinstance(_last(await core.run(ADMIN, "/chat hi")), ChatCompleted)


# -- audit ---------------------------------------------------------------------------------------


async def test_every_admin_change_is_in_the_audit_log_with_old_and_new() -> None:
    core = await _core()
    core.provider.known_models["x/new"] = ModelPricing(Decimal(1), Decimal(2))
    for text in (
        "/models add x/new",
        "/models default x/new",
        "/models default openai/gpt-4o-mini --channel",
        "/models remove x/new",
        "/budget set 5",
        "/budget set 7.50",
        "/budget set 2 --user bob",
        "/budget set 1 --each-user",
        "/budget clear --user bob",
        "/prompt set Be brief.",
        "/prompt set --channel Be terse.",
        "/prompt clear --channel",
        "/access channel off",
        "/access user bob off",
        "/apikey clear",
    ):
        assert not any(isinstance(r, ErrorReply) for r in await core.run(ADMIN, text)), text
    # Nothing changed, nothing recorded.
    await core.run(ADMIN, "/budget clear --channel")
    await core.run(ADMIN, "/access user bob off")
    rows = core.store.data.governance.audit
    assert [(r.action, r.target, r.old_value, r.new_value) for r in rows] == [
        ("apikey.set", "key:openrouter", None, "sk-or-v1-…0000"),
        ("models.add", "model:x/new", None, "$1.00 in / $2.00 out"),
        ("models.default", "workspace", STRONG, "x/new"),
        ("models.default", "channel:general", None, CHEAP),
        ("models.remove", "model:x/new", "$1.00 in / $2.00 out", None),
        ("budget.set", "workspace", None, "$5.00"),
        ("budget.set", "workspace", "$5.00", "$7.50"),
        ("budget.set", "user:bob", None, "$2.00"),
        ("budget.set", "each-user", None, "$1.00"),
        ("budget.clear", "user:bob", "$2.00", None),
        ("prompt.set", "workspace", None, "Be brief."),
        ("prompt.set", "channel:general", None, "Be terse."),
        ("prompt.clear", "channel:general", "Be terse.", None),
        ("access.channel", "channel:general", "on", "off"),
        ("access.user", "user:bob", "on", "off"),
        ("apikey.clear", "key:openrouter", "sk-or-v1-…0000", None),
    ]
    assert all((r.platform, r.user_id, r.created_at) == ("console", "alice", MARCH) for r in rows)
    assert KEY not in repr(rows)
    shown = _text(await core.run(ADMIN, "/audit 3"))
    assert shown.splitlines()[0] == "The latest 3 admin change(s), newest first (UTC):"
    assert (
        "• 2026-03-10 12:00 · alice · apikey.clear · openrouter key · sk-or-v1-…0000 → —" in shown
    )
    assert len(shown.splitlines()) == 4


# -- permissions ---------------------------------------------------------------------------------

GOVERNANCE_COMMANDS = [
    "/budget set 5 --user bob",
    "/budget set 5 --each-user",
    "/budget clear --user bob",
    "/models default openai/gpt-4o-mini --channel",
    "/prompt set Be brief.",
    "/prompt set --channel Be brief.",
    "/prompt clear",
    "/access channel off",
    "/access user bob off",
    "/audit",
    "/audit 50",
]


@pytest.mark.parametrize("text", GOVERNANCE_COMMANDS)
async def test_members_are_refused_every_governance_action_and_nothing_changes(text: str) -> None:
    core = build_core()
    await core.run(ADMIN, "/prompt set Original.")
    data = core.store.data

    def snapshot() -> tuple[object, ...]:
        g = data.governance
        return (dict(data.budgets), dict(g.policies), set(g.users_off), list(g.audit))

    before = snapshot()
    command = c.parse(text)
    action = permissions.admin_action(command)
    assert action is not None
    replies = [r async for r in core.dispatcher.run(MEMBER, command)]
    assert replies == [ErrorReply(f"Only workspace admins can {action}.", private=True)]
    assert snapshot() == before


@pytest.mark.parametrize("text", ["/prompt", "/access", "/costs me"])
async def test_anyone_may_see_what_applies_to_them(text: str) -> None:
    core = build_core()
    assert permissions.admin_action(c.parse(text)) is None
    replies = await core.run(MEMBER, text)
    assert len(replies) == 1 and isinstance(replies[0], TextReply) and replies[0].private
