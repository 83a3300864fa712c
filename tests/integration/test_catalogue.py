"""The catalogue end to end (issue 11): routerbot's core and the shipped recommendations
against the fake OpenRouter over real HTTP, the fake's catalogue changing under it: retired
models, a price change, an alias, a small-context model, refused requests, and how often
GET /models is asked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import DEFAULT_MODEL_SETTINGS, Settings
from bot.core.catalogue.sync import sync_allowlists
from bot.core.replies import ChatCompleted, ChatFailed, Invocation, Reply, TextReply
from bot.runtime import Runtime, build_runtime
from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter, Fault
from tests.fakes.openrouter_catalogue import LATE_2026_MODELS, RETIRED_IN_2026

ADMIN = Invocation("console", "acme", "general", "alice", is_admin=True)
MEMBER = Invocation("console", "acme", "general", "bob")


def settings_for(tmp_path: Path, base_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'rb.db'}",
        "routerbot_secret_key": SecretStr(generate_key()),
        "openrouter_base_url": base_url,
        "openrouter_api_key": SecretStr(DEFAULT_KEY),
        "routerbot_data_dir": tmp_path,
        "routerbot_model_settings": DEFAULT_MODEL_SETTINGS,  # the shipped recommendations
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter(models=LATE_2026_MODELS + RETIRED_IN_2026) as server:
        yield server


@pytest.fixture
async def runtime(fake: FakeOpenRouter, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt, _ = await build_runtime(settings_for(tmp_path, fake.base_url))
    try:
        yield rt
    finally:
        await rt.aclose()


async def run(rt: Runtime, ctx: Invocation, text: str) -> list[Reply]:
    return [r async for r in rt.dispatcher.run_text(ctx, text)]


async def text_of(rt: Runtime, ctx: Invocation, text: str) -> str:
    replies = await run(rt, ctx, text)
    assert len(replies) == 1, replies
    reply = replies[0]
    assert hasattr(reply, "text"), reply
    return str(reply.text)


async def until(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Poll for a background task's effect (the refresher has no event to await)."""
    async with asyncio.timeout(10):
        while not await predicate():
            await asyncio.sleep(0.01)


# ---- recommendations and the new workspace's default ----------------------------------------


async def test_shipped_recommendations_are_served_and_the_default_follows_sonnet(
    fake: FakeOpenRouter, runtime: Runtime
) -> None:
    listing = await text_of(runtime, MEMBER, "/models")
    assert "`~anthropic/claude-sonnet-latest` $2.00 / $10.00 — default" in listing
    for model_id in ("deepseek/deepseek-v4-flash", "openai/gpt-5-mini", "google/gemini-3.5-flash"):
        assert f"`{model_id}`" in listing
    assert "no longer available" not in listing
    done = (await run(runtime, MEMBER, "/chat hello"))[-1]
    assert isinstance(done, ChatCompleted), done
    # The alias was asked for; the footer names the model that answered.
    assert fake.chat_requests[-1].json["model"] == "~anthropic/claude-sonnet-latest"
    assert done.footer.startswith("anthropic/claude-sonnet-5 · ")


async def test_a_new_workspace_default_skips_a_retired_recommendation(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    old_first = tmp_path / "models.json"
    old_first.write_text(
        json.dumps(
            {
                "version": 1,
                "pricing": {
                    "openrouter": {
                        "anthropic/claude-3.5-sonnet": {"inputCostPer1M": 3, "outputCostPer1M": 15},
                        "google/gemini-2.0-flash-001": {
                            "inputCostPer1M": 0.1,
                            "outputCostPer1M": 0.4,
                        },
                        "openai/gpt-5-mini": {"inputCostPer1M": 0.2, "outputCostPer1M": 1.5},
                    }
                },
            }
        )
    )
    fake.catalogue.retire("anthropic/claude-3.5-sonnet")
    fake.catalogue.retire("google/gemini-2.0-flash-001")
    rt, _ = await build_runtime(
        settings_for(tmp_path, fake.base_url, routerbot_model_settings=old_first)
    )
    try:
        listing = await text_of(rt, MEMBER, "/models")
        # Seeded at today's price (the file said $0.20 / $1.50), the first served one default.
        assert "`openai/gpt-5-mini` $0.25 / $2.00 — default" in listing
        assert (
            "`anthropic/claude-3.5-sonnet` $3.00 / $15.00 — no longer available at OpenRouter"
            in listing
        )
        assert "`google/gemini-2.0-flash-001`" in listing
        done = (await run(rt, MEMBER, "/chat hi"))[-1]
        assert isinstance(done, ChatCompleted) and done.model == "openai/gpt-5-mini"
        # A retired model is one sentence, and nothing is sent for it.
        sent = len(fake.chat_requests)
        [refused] = await run(rt, MEMBER, "/chat --model anthropic/claude-3.5-sonnet hi")
        assert isinstance(refused, ChatFailed)
        assert refused.text == (
            "`anthropic/claude-3.5-sonnet` is no longer available at OpenRouter; an admin can "
            "pick another default with /models default <id> (see /models) and take it off with "
            "/models remove anthropic/claude-3.5-sonnet."
        )
        assert len(fake.chat_requests) == sent
    finally:
        await rt.aclose()


async def test_an_unreachable_catalogue_seeds_as_before(tmp_path: Path) -> None:
    # Nothing listens on port 9 of loopback: the catalogue cannot be reached.
    rt, _ = await build_runtime(settings_for(tmp_path, "http://127.0.0.1:9/api/v1"))
    try:
        listing = await text_of(rt, MEMBER, "/models")
        assert "`~anthropic/claude-sonnet-latest` $2.00 / $10.00 — default" in listing
        assert "no longer available" not in listing
        assert "cannot be reached" in await text_of(rt, MEMBER, "/models search sonnet")
    finally:
        await rt.aclose()


# ---- one GET /models per refresh ---------------------------------------------------------------


async def test_get_models_is_asked_once_per_refresh_whatever_the_workspaces_and_chats(
    fake: FakeOpenRouter, runtime: Runtime
) -> None:
    workspaces = [Invocation("slack", f"T{i}", "C1", f"U{i}") for i in range(12)]
    results = await asyncio.gather(
        *(run(runtime, ctx, f"/chat hello {i}") for i, ctx in enumerate(workspaces)),
        *(run(runtime, ctx, "/models search flash") for ctx in workspaces[:4]),
    )
    assert all(isinstance(r[-1], ChatCompleted | TextReply) for r in results), results
    assert fake.catalogue.list_calls == 1
    assert len([r for r in fake.requests if r.path.endswith("/models")]) == 1
    assert runtime.catalogue is not None
    await runtime.catalogue.refresh()
    more = [Invocation("discord", str(i), "1", "2") for i in range(5)]
    await asyncio.gather(*(run(runtime, ctx, "/chat again") for ctx in more))
    assert fake.catalogue.list_calls == 2


# ---- prices follow the provider ----------------------------------------------------------------


async def test_price_change_reaches_the_allowlist_and_computed_costs(
    fake: FakeOpenRouter, runtime: Runtime
) -> None:
    fake.script(Fault.no_cost(), times=None)  # the provider reports no cost: routerbot computes
    first = (await run(runtime, MEMBER, "/chat --model openai/gpt-5-mini one two three"))[-1]
    assert isinstance(first, ChatCompleted) and first.cost.source == "computed"
    fake.catalogue.set_price("openai/gpt-5-mini", prompt="0.000001", completion="0.000004")
    assert runtime.catalogue is not None
    await runtime.catalogue.refresh()
    second = (await run(runtime, MEMBER, "/chat --model openai/gpt-5-mini one two three"))[-1]
    assert isinstance(second, ChatCompleted)
    assert second.cost.usd is not None and first.cost.usd is not None
    # Same tokens, four times the input price and twice the output price.
    assert second.cost.usd > first.cost.usd * Decimal("1.9")
    changes = await sync_allowlists(runtime.store, runtime.catalogue)
    assert [(c.change.model_id, c.change.kind) for c in changes] == [("openai/gpt-5-mini", "price")]
    assert "`openai/gpt-5-mini` $1.00 / $4.00" in await text_of(runtime, MEMBER, "/models")


async def test_the_refresher_keeps_allowlists_current_in_a_long_running_process(
    fake: FakeOpenRouter, runtime: Runtime
) -> None:
    await text_of(runtime, MEMBER, "/models")  # the workspace exists, seeded
    fake.catalogue.set_price("deepseek/deepseek-v4-flash", prompt="0.0000002")
    fake.catalogue.retire("google/gemini-3.5-flash")
    runtime.start_catalogue_refresh()
    runtime.start_catalogue_refresh()  # once per process, whoever asks
    text = ""

    async def followed() -> bool:
        nonlocal text
        text = await text_of(runtime, MEMBER, "/models")
        return "no longer available" in text

    await until(followed)
    assert "`deepseek/deepseek-v4-flash` $0.20 / $0.28" in text
    assert "`google/gemini-3.5-flash` $1.50 / $9.00 — no longer available at OpenRouter" in text
    assert fake.catalogue.list_calls == 2


# ---- retired while in use ------------------------------------------------------------------------


async def test_a_model_retired_while_in_use_is_marked_and_named(
    fake: FakeOpenRouter, runtime: Runtime
) -> None:
    done = (await run(runtime, MEMBER, "/chat --model openai/gpt-5-mini hi"))[-1]
    assert isinstance(done, ChatCompleted)
    fake.catalogue.retire("openai/gpt-5-mini")  # the cached catalogue does not know yet
    failed = (await run(runtime, MEMBER, "/chat --model openai/gpt-5-mini hi again"))[-1]
    assert isinstance(failed, ChatFailed)
    assert failed.text.startswith("`openai/gpt-5-mini` is no longer available at OpenRouter;")
    assert "/models remove openai/gpt-5-mini" in failed.text
    assert "does not know" not in failed.text and failed.text.endswith("Nothing was charged.")
    assert "`openai/gpt-5-mini` $0.25 / $2.00 — no longer available at OpenRouter" in (
        await text_of(runtime, MEMBER, "/models")
    )
    sent = len(fake.chat_requests)
    [again] = await run(runtime, MEMBER, "/chat --model openai/gpt-5-mini third time")
    assert isinstance(again, ChatFailed) and len(fake.chat_requests) == sent


async def test_models_add_tells_retired_from_unknown_and_takes_aliases_and_variants(
    fake: FakeOpenRouter, runtime: Runtime
) -> None:
    fake.catalogue.retire("anthropic/claude-3.5-sonnet")
    retired = await text_of(runtime, ADMIN, "/models add anthropic/claude-3.5-sonnet")
    assert retired == (
        "`anthropic/claude-3.5-sonnet` is no longer available at OpenRouter, so it was not "
        "added; /models search <words> finds what it serves today."
    )
    unknown = await text_of(runtime, ADMIN, "/models add nobody/nothing-here")
    assert "does not know the model `nobody/nothing-here`" in unknown
    nitro = await text_of(runtime, ADMIN, "/models add deepseek/deepseek-v4-flash:nitro")
    assert nitro.startswith("Added `deepseek/deepseek-v4-flash:nitro` ($0.14 in / $0.28 out")
    free = await text_of(runtime, ADMIN, "/models add meta-llama/llama-3.3-70b-instruct:free")
    assert free.startswith("Added `meta-llama/llama-3.3-70b-instruct:free` ($0 in / $0 out")
    assert "does not know" in await text_of(runtime, ADMIN, "/models add openai/gpt-5-mini:free")
    done = (await run(runtime, MEMBER, "/chat --model deepseek/deepseek-v4-flash:nitro hi"))[-1]
    assert isinstance(done, ChatCompleted)
    assert fake.chat_requests[-1].json["model"] == "deepseek/deepseek-v4-flash:nitro"


# ---- discovery -----------------------------------------------------------------------------------


async def test_a_member_searches_and_asks_for_info(fake: FakeOpenRouter, runtime: Runtime) -> None:
    fake.catalogue.expire("google/gemini-2.0-flash-001", "2026-02-01")
    found = await text_of(runtime, MEMBER, "/models search gpt mini")
    assert found.splitlines()[1] == (
        "• `openai/gpt-5-mini` $0.25 / $2.00 · 400K context · allowed here"
    )
    llama = await text_of(runtime, MEMBER, "/models search LLAMA free")
    assert (
        "`meta-llama/llama-3.3-70b-instruct:free` $0 / $0 · 65K context · not on the allowlist"
        in llama
    )
    nothing = await text_of(runtime, MEMBER, "/models search quantum toaster")
    assert nothing == (
        "No model in OpenRouter's catalogue matches `quantum toaster`; try fewer or shorter words."
    )
    alias = await text_of(runtime, MEMBER, "/models info ~anthropic/claude-sonnet-latest")
    assert alias.splitlines() == [
        "`~anthropic/claude-sonnet-latest` — Anthropic Claude Sonnet Latest",
        "• price: $2.00 / $10.00 per 1M tokens (in / out), cached input $0.20",
        "• context: 1,000,000 tokens",
        "• input: text, image, file",
        "• follows the newest of its family, today `anthropic/claude-sonnet-5`",
        "• on this workspace's allowlist (the default)",
    ]
    sonnet = await text_of(runtime, MEMBER, "/models info anthropic/claude-sonnet-5")
    assert "web search $0.01 each" in sonnet
    assert sonnet.endswith(
        "not on the allowlist; an admin can add it with /models add anthropic/claude-sonnet-5"
    )
    expired = await text_of(runtime, MEMBER, "/models info google/gemini-2.0-flash-001")
    assert "• availability ended 2026-02-01" in expired
    missing = await text_of(runtime, MEMBER, "/models info nobody/nothing")
    assert missing.startswith("`nobody/nothing` is not in OpenRouter's catalogue today")
    assert fake.catalogue.list_calls == 1


# ---- context, and what a refusal means --------------------------------------------------------


async def test_a_long_thread_is_trimmed_to_a_small_context_and_says_so_once(
    fake: FakeOpenRouter, runtime: Runtime
) -> None:
    await text_of(runtime, ADMIN, "/models add tiny/context-2k")
    # The fake answers "echo: <prompt>", so every turn adds about 2 × 500 estimated tokens;
    # tiny/context-2k keeps 512 tokens free for the answer, leaving 1,536 for the request.
    words = ["word"] * 300
    conversation = None
    notices: list[tuple[str, ...]] = []
    for turn in range(4):
        prompt = f"turn{turn} " + " ".join(words)
        replies = [
            r
            async for r in runtime.service.chats.chat(
                MEMBER, prompt, "tiny/context-2k", conversation=conversation
            )
        ]
        done = replies[-1]
        assert isinstance(done, ChatCompleted), done
        notices.append(done.notices)
        conversation = await runtime.service.chats.conversation(MEMBER, done.conversation_id)
        sent = fake.chat_requests[-1].json["messages"]
        assert sent[-1]["content"] == prompt  # the newest turn always goes
    assert notices[:2] == [(), ()]
    assert notices[2] == (
        "Earlier turns of this conversation were left out: they no longer fit "
        "`tiny/context-2k`'s context of 2,048 tokens.",
    )
    assert notices[3] == ()  # said once
    assert [m["content"].split()[0] for m in fake.chat_requests[-1].json["messages"]] == [
        "turn2",
        "echo:",
        "turn3",
    ]


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [
        (
            Fault.http(
                400,
                message="This endpoint's maximum context length is 2048 tokens. However, you "
                "requested about 9000 tokens (8000 of text input, 1000 in the output).",
            ),
            "This conversation is longer than `openai/gpt-5-mini` can read (2,048 tokens); "
            "start a new one with /chat, or pick a model with a longer context (see /models).",
        ),
        (
            Fault.http(
                403, message="Key limit exceeded", metadata={"limit_source": "openrouter_key_limit"}
            ),
            "The OpenRouter API key has reached its spending limit; an admin can raise the limit "
            "at OpenRouter or set another key with /apikey.",
        ),
        (
            Fault.http(
                403,
                message="Budget limit exceeded",
                metadata={"limit_source": "openrouter_guardrail_budget"},
            ),
            "A budget set at OpenRouter for this key (a guardrail or workspace budget) is spent "
            "for now; an admin can raise it at OpenRouter.",
        ),
        (
            Fault.http(403, message="Request blocked by guardrail: model not allowed"),
            "A guardrail at OpenRouter on this key blocked the request (allowed models or "
            "providers, or a content rule); an admin can check the key's guardrails at OpenRouter.",
        ),
        (
            Fault.http(
                403,
                message="Input flagged",
                metadata={"reasons": ["harassment"], "flagged_input": "x"},
            ),
            "OpenRouter's moderation refused this request (403); rephrase it, or ask with another "
            "model.",
        ),
    ],
)
async def test_refusals_say_what_refused_them(
    fake: FakeOpenRouter, runtime: Runtime, fault: Fault, sentence: str
) -> None:
    fake.script(fault)
    failed = (await run(runtime, MEMBER, "/chat --model openai/gpt-5-mini hello"))[-1]
    assert isinstance(failed, ChatFailed)
    assert failed.text == f"{sentence} Nothing was charged."
