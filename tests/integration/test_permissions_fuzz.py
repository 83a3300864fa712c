"""Fuzzed permission checks: whatever a non-admin types, keys, allowlists, defaults, budgets,
channel policies, access and the audit log stay as they were (the check is in the core, on
the server side)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import select

from bot.config import Settings
from bot.core.replies import Invocation
from bot.runtime import Runtime, build_runtime
from storage.crypto import generate_key
from storage.models import (
    AllowedModel,
    AuditEntry,
    Budget,
    ChannelPolicy,
    ProviderKey,
    UserAccess,
    Workspace,
)
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter

ADMIN = Invocation("console", "acme", "general", "root", is_admin=True)

words = st.sampled_from(
    [
        "/models",
        "/apikey",
        "/budget",
        "/costs",
        "/chat",
        "/routerbot",
        "/help",
        "models",
        "/MODELS",
        "/prompt",
        "/access",
        "/audit",
    ]
)
subs = st.sampled_from(
    [
        "add",
        "remove",
        "default",
        "set",
        "clear",
        "status",
        "list",
        "recommended",
        "workspace",
        "",
        "channel",
        "user",
        "me",
        "show",
    ]
)
args = st.one_of(
    st.sampled_from(
        [
            "openai/gpt-4o-mini",
            "anthropic/claude-3.5-sonnet",
            DEFAULT_KEY,
            "50",
            "--channel",
            "$10",
            "--provider fireworks",
            "x/y:free",
            "accounts/fireworks/models/deepseek-v3",
            "--user root",
            "--user <@U1|x>",
            "--each-user",
            "off",
            "on",
            "Be brief.",
        ]
    ),
    st.text(max_size=30),
)
free_form = st.builds(
    lambda w, s, a, b: " ".join(p for p in (w, s, a, b) if p), words, subs, args, args
)
# Well-formed admin commands, each of which changes something when an admin runs it.
mutations = st.sampled_from(
    [
        f"/apikey set {DEFAULT_KEY}",
        "/apikey clear",
        "/models remove anthropic/claude-3.5-sonnet",
        "/models add x/y:free",
        "/models default openai/gpt-4o-mini",
        "/budget set 50",
        "/budget set 10 --channel",
        "/budget clear",
        "/routerbot models remove openai/gpt-4o-mini",
        "/budget set 5 --user root",
        "/budget set 5 --each-user",
        "/budget clear --user root",
        "/models default openai/gpt-4o-mini --channel",
        "/prompt set Be brief.",
        "/prompt set --channel Be brief.",
        "/prompt clear",
        "/access channel off",
        "/access user root off",
        "/routerbot access channel off",
    ]
)
command_text = st.one_of(mutations, free_form)
member_id = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.AbstractEventLoop, Runtime]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    loop = asyncio.new_event_loop()
    fake = FakeOpenRouter()
    base = loop.run_until_complete(fake.start())
    config = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{Path(tmp) / 'fuzz.db'}",
        routerbot_secret_key=SecretStr(generate_key()),
        openrouter_base_url=base,
        routerbot_admins="console:root",
        routerbot_data_dir=Path(tmp),
    )
    runtime, _ = loop.run_until_complete(build_runtime(config))

    async def prepare() -> None:
        # Something for every clear and "on" to change, were a member allowed to.
        for text in (
            f"/apikey set {DEFAULT_KEY}",
            "/prompt set Original.",
            "/prompt set --channel Original here.",
            "/budget set 5 --user root",
            "/budget set 2 --each-user",
            "/access user somebody off",
        ):
            async for _ in runtime.dispatcher.run_text(ADMIN, text):
                pass

    loop.run_until_complete(prepare())
    try:
        yield loop, runtime
    finally:
        loop.run_until_complete(runtime.aclose())
        loop.run_until_complete(fake.stop())
        loop.close()


async def snapshot(runtime: Runtime) -> tuple[object, ...]:
    async with runtime.db.session() as s:
        keys = [
            (k.workspace_id, k.provider, k.ciphertext)
            for k in (await s.execute(select(ProviderKey))).scalars()
        ]
        models = sorted(
            (m.workspace_id, m.model_id) for m in (await s.execute(select(AllowedModel))).scalars()
        )
        defaults = sorted(
            (w.id, w.default_model) for w in (await s.execute(select(Workspace))).scalars()
        )
        budgets = sorted(
            (b.workspace_id, b.channel_id, b.user_id, b.limit_nano)
            for b in (await s.execute(select(Budget))).scalars()
        )
        policies = sorted(
            (p.workspace_id, p.channel_id, p.system_prompt, p.default_model, p.chats_off)
            for p in (await s.execute(select(ChannelPolicy))).scalars()
        )
        access = sorted(
            (a.workspace_id, a.user_id) for a in (await s.execute(select(UserAccess))).scalars()
        )
        audit = len((await s.execute(select(AuditEntry))).all())
    return keys, models, defaults, budgets, policies, access, audit


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=command_text, user=member_id)
def test_members_never_change_governed_state(
    world: tuple[asyncio.AbstractEventLoop, Runtime], text: str, user: str
) -> None:
    loop, runtime = world
    if user == "root":
        return
    member = Invocation("console", "acme", "general", user, is_admin=False)

    async def attempt() -> None:
        before = await snapshot(runtime)
        async for _ in runtime.dispatcher.run_text(member, text):
            pass
        assert await snapshot(runtime) == before, text

    loop.run_until_complete(attempt())


def test_secrets_never_reach_the_logs(
    world: tuple[asyncio.AbstractEventLoop, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    loop, runtime = world
    caplog.set_level(logging.DEBUG)

    async def flows() -> None:
        for text in (
            f"/apikey set {DEFAULT_KEY}",
            "/apikey set sk-or-v1-wrongwrongwrongwrongwrong",
            "/apikey status",
            "/chat hi",
        ):
            async for _ in runtime.dispatcher.run_text(ADMIN, text):
                pass

    loop.run_until_complete(flows())
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert DEFAULT_KEY not in logged
    assert "wrongwrongwrong" not in logged
