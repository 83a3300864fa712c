"""Arbitrary bytes and Unicode through the grammar: the core ``parse``, ``Dispatcher.run_text``
and the console's line handling, over a real runtime and the fake OpenRouter.

Every command gives one answer (or one usage sentence) and raises nothing; a ``/chat`` with
garbage reaches the provider cleaned and comes back as an answer with its footer.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.config import Settings
from bot.console import Console, read_line
from bot.core import commands as c
from bot.core.errors import UsageError
from bot.core.replies import ChatCompleted, Invocation
from bot.core.text import clean_text
from bot.runtime import Runtime, build_runtime
from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.hostile_support import (
    FAILURES,
    NAMES_A_MODEL,
    answer_text,
    command_line,
    expected_prompt,
    hostile,
    typed,
)

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    runtime: Runtime
    fake: FakeOpenRouter

    def run(self, ctx: Invocation, text: str) -> list[object]:
        async def collect() -> list[object]:
            return [r async for r in self.runtime.dispatcher.run_text(ctx, text)]

        return self.loop.run_until_complete(collect())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = Path(tmp_path_factory.mktemp("hostile"))
    loop = asyncio.new_event_loop()
    fake = FakeOpenRouter()
    base = loop.run_until_complete(fake.start())
    config = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp / 'hostile.db'}",
        routerbot_secret_key=SecretStr(generate_key()),
        openrouter_base_url=base,
        # The operator's key: chats work whatever an admin's garbage did to the stored one.
        openrouter_api_key=SecretStr(DEFAULT_KEY),
        routerbot_data_dir=tmp,
    )
    runtime, _ = loop.run_until_complete(build_runtime(config))
    try:
        yield World(loop, runtime, fake)
    finally:
        loop.run_until_complete(runtime.aclose())
        loop.run_until_complete(fake.stop())
        loop.close()


@settings(max_examples=400, deadline=None)
@given(typed)
def test_parse_gives_a_command_or_a_usage_error(text: str) -> None:
    for version in (text, clean_text(text)):
        try:
            c.parse(version)
        except UsageError as exc:
            assert exc.message


ADMIN = Invocation("console", "hostile-admin", "general", "root", is_admin=True)
MEMBER = Invocation("console", "hostile-chats", "general", "bob", is_admin=False)


@FUZZ
@given(text=typed)
def test_run_text_answers_any_text_once(world: World, text: str) -> None:
    answer_text(world.run(ADMIN, text))  # type: ignore[arg-type]


@FUZZ
@given(tail=hostile)
def test_a_chat_with_garbage_reaches_the_provider_cleaned(world: World, tail: str) -> None:
    prompt = expected_prompt(clean_text(f"/chat {tail}"))
    assume(prompt != NAMES_A_MODEL)
    sent = len(world.fake.chat_requests)
    replies = world.run(MEMBER, f"/chat {tail}")
    text = answer_text(replies)  # type: ignore[arg-type]
    if prompt is None:
        assert len(world.fake.chat_requests) == sent, text
        return
    assert isinstance(replies[-1], ChatCompleted), replies
    assert world.fake.chat_requests[-1].json["messages"][-1]["content"] == prompt


def _console(world: World, workspace: str) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(world.runtime, workspace=workspace, user="root", out=out, interactive=False)
    return console, out


def _piped(line: bytes) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(line.replace(b"\n", b" ") + b"\n"))


as_bytes = st.one_of(
    command_line.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=60)
)


@FUZZ
@given(raw=as_bytes)
def test_the_console_answers_any_line_once(world: World, raw: bytes) -> None:
    console, out = _console(world, "hostile-console")

    async def attempt() -> None:
        line = await read_line(_piped(raw), interactive=False)
        assert line is not None
        if line.strip().lower() in ("/quit", "/exit"):
            return
        await console.handle_line(line)

    world.loop.run_until_complete(attempt())
    written = out.getvalue()
    assert bool(written) == bool(clean_text(raw).strip()), (raw, written)
    assert not any(failure in written for failure in FAILURES), written


@FUZZ
@given(tail=st.one_of(hostile.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary()))
def test_a_console_chat_with_garbage_bytes_is_answered(world: World, tail: bytes) -> None:
    tail = tail.replace(b"\n", b" ")
    line = clean_text(b"/chat " + tail)
    prompt = expected_prompt(line)
    assume(prompt not in (None, NAMES_A_MODEL))
    console, out = _console(world, "hostile-console-chats")
    world.loop.run_until_complete(console.handle_line(line))
    assert world.fake.chat_requests[-1].json["messages"][-1]["content"] == prompt
    assert out.getvalue().splitlines()[-1].startswith("— "), out.getvalue()  # the footer
