"""A real ``routerbot console`` fed through a pipe, signalled in the middle of an answer: its chat
is not lost. SIGTERM: the console records it and exits 0; SIGKILL: the next console settles it
at start. Either way the ledger ends up equal to the provider's record of what it served, and
the dead console's budget hold does not outlive its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.test_console import console_env
from tests.integration.worker_support import (
    check_ledger,
    flights_left,
    fresh_postgres,
    ledger_vs_provider,
    wait_settled,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
LONG = " ".join(["word"] * 200)


@dataclass
class Console:
    """One console process: lines go in through its stdin, its stdout is read as it comes."""

    proc: asyncio.subprocess.Process
    out: bytearray = field(default_factory=bytearray)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(4096):
            self.out.extend(chunk)
            self.changed.set()
        self.changed.set()

    def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())

    async def wait_for_output(self, text: str, *, count: int = 1, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while self.out.decode(errors="replace").count(text) < count:
                assert self.proc.returncode is None, self.out.decode(errors="replace")
                self.changed.clear()
                await self.changed.wait()

    async def finish(self, timeout: float = 30) -> tuple[int, str]:
        """Close stdin (EOF) and wait for the exit; returns the status and stderr."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.close()
        err = await asyncio.wait_for(self.proc.stderr.read(), timeout)
        status = await asyncio.wait_for(self.proc.wait(), timeout)
        if self.reader is not None:
            await self.reader
        return status, err.decode()


@contextlib.asynccontextmanager
async def console(env: dict[str, str], cwd: Path) -> AsyncIterator[Console]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", "--workspace", "acme",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
    )  # fmt: skip
    running = Console(proc)
    running.reader = asyncio.create_task(running._read())
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def database_url(tmp_path: Path, backend: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'console.db'}"
    else:
        async with fresh_postgres() as url:
            yield url


async def test_the_console_exits_cleanly_on_sigterm_at_the_prompt(tmp_path: Path) -> None:
    """At the prompt nothing is in flight: SIGTERM ends the console at once (it does not hang
    on the line it was waiting for)."""
    async with FakeOpenRouter() as fake:
        env = console_env(tmp_path, fake, ROUTERBOT_SECRET_KEY=generate_key())
        async with console(env, tmp_path) as c:
            c.send("/models")
            await c.wait_for_output("anthropic/claude-3.5-sonnet")
            c.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(c.proc.wait(), 30) == -signal.SIGTERM


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_console_signalled_mid_answer_leaves_the_ledger_as_the_provider_billed(
    tmp_path: Path, backend: str, how: str
) -> None:
    async with FakeOpenRouter() as fake, database_url(tmp_path, backend) as url:
        fake.words_delay = 0.05
        env = console_env(
            tmp_path,
            fake,
            ROUTERBOT_SECRET_KEY=generate_key(),
            ROUTERBOT_LEASE_SECONDS="2",
            ROUTERBOT_LEASE_RENEW_SECONDS="0.5",
        )
        env["DATABASE_URL"] = url
        async with console(env, tmp_path) as first:
            first.send(f"/apikey set {DEFAULT_KEY}", "/chat a short one", "/budget set 5")
            await first.wait_for_output(" · ", count=1)  # the short chat's footer
            fake.script(answer=LONG)
            first.send("/chat a long one")
            await first.wait_for_output("word", count=20)  # mid-answer, billing
            first.proc.send_signal(getattr(signal, how))
            status, err = await first.finish()
        if how == "SIGTERM":
            assert status == 0, err
            assert "stopped by SIGTERM" in err and "Traceback" not in err
            # Recorded as it unwound, and settled from the provider's record before it exited.
            assert await flights_left(url) == 0
            assert ledger_vs_provider((await check_ledger(url)).rows, fake) == []
        else:
            assert status == -signal.SIGKILL
            assert await flights_left(url) == 1  # on record, not on the ledger yet

        # The next console settles what the first left, at start: no command needed.
        async with console(env, tmp_path) as second:
            check = await wait_settled(url, fake)
            second.send("/budget")
            await second.wait_for_output("$5.00")
            status, err = await second.finish()
        assert status == 0, err
        assert "held by chats in progress" not in second.out.decode()
        assert check.problems == []
        [cut_short] = [r for r in check.rows if r.outcome in ("cancelled", "interrupted")]
        assert cut_short.outcome == ("cancelled" if how == "SIGTERM" else "interrupted")
        assert cut_short.cost_source == "reconciled" and cut_short.cost_nano
