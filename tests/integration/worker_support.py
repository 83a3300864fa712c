"""Real ``routerbot`` worker processes for the multi-worker, fault and security tests (and the
load and soak benchmarks): start them, learn their port from their own log line, keep their
stderr, send them signed Slack requests, and check the database's invariants afterwards.

Cross-process effects are awaited by polling with a deadline (the fakes live in the calling
process, so most waits re-check on every recorded call instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, pool, select, text

from bot.core.pricing import usd_to_nano
from storage import stores
from storage.db import Database
from storage.models import BudgetReservation, ChatInFlight, Conversation, UsageRecord, Workspace
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import FakeMessage, FakeSlack, command_body, event_body, signed_headers
from tests.fixtures import PINNED_MODEL_SETTINGS

REPO = Path(__file__).resolve().parents[2]
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
SIGNING_SECRET = "worker-signing-secret"
#: The cost footer's middle (``model · 12 in · 34 out · $0.01 · 1.2 s``).
FOOTER_MARK = " out · "
#: A whole footer as the last line, also without token counts (``model · cost unknown · 1.2 s``).
FOOTER = re.compile(r"\n[\w./:@-]+ · (?:.* · )?\d+\.\d s$")
_LISTENING = re.compile(r"listening on port (\d+)")


# -- processes --------------------------------------------------------------------------------


@dataclass
class Worker:
    """One ``python -m bot <command>`` process; stderr is read continuously (and kept)."""

    name: str
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    port: int | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} has not said which port it listens on"
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def stderr_text(self) -> str:
        return "\n".join(self.lines)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            decoded = line.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(decoded)
            if self.port is None and (match := _LISTENING.search(decoded)):
                self.port = int(match.group(1))
            self._changed.set()
        self._changed.set()

    async def wait_listening(self, timeout: float = 30.0) -> None:
        """Until the process logged its port (or died, which fails with its log)."""
        async with asyncio.timeout(timeout):
            while self.port is None:
                if self._reader is not None and self._reader.done():
                    await self.proc.wait()
                    raise AssertionError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.stderr_text()}"
                    )
                self._changed.clear()
                await self._changed.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a host dies or the OOM killer strikes."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit status."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
        assert self.proc.returncode is not None
        return self.proc.returncode


async def start_worker(
    command: str, env: Mapping[str, str], *, cwd: Path, name: str | None = None
) -> Worker:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", command, env=dict(env), cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    worker = Worker(name or f"{command}-{proc.pid}", proc)
    worker._reader = asyncio.create_task(worker._read())
    return worker


async def wait_healthy(worker: Worker, timeout: float = 30.0) -> dict[str, Any]:
    """Until ``/healthz`` answers 200 (the port is known and the database reachable)."""
    await worker.wait_listening(timeout)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(worker.url + "/healthz") as resp:
                    if resp.status == 200:
                        return dict(await resp.json())
            if not worker.alive or time.monotonic() > deadline:
                raise AssertionError(f"{worker.name} is not healthy:\n{worker.stderr_text()}")
            await asyncio.sleep(0.05)  # polling another process's readiness


def base_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """A minimal environment: nothing leaks in from the developer's shell or a ``.env``."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "ROUTERBOT_DATA_DIR": str(tmp_path / "data"),
        "ROUTERBOT_LOG_LEVEL": "INFO",
        "ROUTERBOT_MODEL_SETTINGS": str(PINNED_MODEL_SETTINGS),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(values)
    return env


def slack_env(
    tmp_path: Path,
    *,
    database_url: str,
    secret_key: str,
    slack: FakeSlack,
    bot_token: str,
    openrouter_url: str,
    admins: str = "slack:UADMIN",
    **extra: str,
) -> dict[str, str]:
    return base_env(
        tmp_path,
        DATABASE_URL=database_url,
        ROUTERBOT_SECRET_KEY=secret_key,
        ROUTERBOT_ADMINS=admins,
        OPENROUTER_BASE_URL=openrouter_url,
        SLACK_API_URL=slack.base_url,
        SLACK_BOT_TOKEN=bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PORT="0",
        # The checks here read the chat.update shape (question and answer in one message).
        **{"SLACK_STREAMING": "update", **extra},
    )


@contextlib.asynccontextmanager
async def workers(
    command: str, envs: list[dict[str, str]], *, cwd: Path
) -> AsyncIterator[list[Worker]]:
    """Start one worker per environment at the same moment; stop them all on exit."""
    started = await asyncio.gather(
        *(start_worker(command, env, cwd=cwd, name=f"{command}-{i}") for i, env in enumerate(envs))
    )
    try:
        yield list(started)
    finally:
        await asyncio.gather(*(w.stop() for w in started))


# -- Slack requests ---------------------------------------------------------------------------


@dataclass
class Acked:
    status: int
    seconds: float
    response_url: str = ""


class SlackClient:
    """Sends requests to workers as Slack does: signed, over kept-alive connections."""

    def __init__(self, slack: FakeSlack, http: aiohttp.ClientSession, team: str = "T1") -> None:
        self.slack = slack
        self.http = http
        self.team = team

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> Acked:
        started = time.perf_counter()
        async with self.http.post(url + "/slack/events", data=body.encode(), headers=headers) as r:
            await r.read()
        return Acked(r.status, time.perf_counter() - started)

    async def command(
        self,
        url: str,
        command: str,
        text: str = "",
        *,
        user: str = "U1",
        channel: str = "C1",
        team: str | None = None,
        trigger_id: str | None = None,
        response_url: str | None = None,
    ) -> Acked:
        response_url = response_url or self.slack.response_url()
        body = command_body(
            command, text, team_id=team or self.team, user_id=user, channel_id=channel,
            response_url=response_url, trigger_id=trigger_id,
        )  # fmt: skip
        headers = signed_headers(body, SIGNING_SECRET)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        acked = await self._post(url, body, headers)
        acked.response_url = response_url
        return acked

    async def event(
        self,
        url: str,
        event: dict[str, Any],
        *,
        event_id: str,
        retry_num: int | None = None,
        team: str | None = None,
    ) -> Acked:
        body = event_body(event, team_id=team or self.team, event_id=event_id)
        headers = signed_headers(body, SIGNING_SECRET, retry_num=retry_num)
        headers["Content-Type"] = "application/json"
        return await self._post(url, body, headers)

    def replies(self, acked: Acked) -> list[str]:
        return self.replies_to(acked.response_url)

    def replies_to(self, response_url: str) -> list[str]:
        """What was posted to a command's ``response_url`` (private replies, errors)."""
        return [str(r.get("text", "")) for r in self.slack.responses_to(response_url)]


def has_footer(text: str) -> bool:
    return FOOTER.search(text) is not None


def answered(message: FakeMessage) -> bool:
    """The message reached its final state: a cost footer, or a one-line warning."""
    text = message.text
    return has_footer(text) or "\n⚠ " in text or text.startswith("⚠")


def question_message(slack: FakeSlack, channel: str, question: str) -> FakeMessage | None:
    """The bot's top-level answer to the ``/chat`` whose prompt was ``question``."""
    for message in slack.posted(channel, top_level=True):
        if f"&gt; {question}\n" in message.history[0]:
            return message
    return None


async def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` (for effects in other processes) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


# -- databases --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (``rb_test_<hex>``), dropped afterwards.

    Unlike the conftest fixture it holds no admin connection while the test runs, so the
    server may be restarted in between.
    """
    import asyncpg

    from tests.conftest import _postgres_unavailable

    name = f"rb_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = await asyncpg.connect(f"{POSTGRES_SERVER}/test", timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        _postgres_unavailable(f"{type(exc).__name__}: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        await wait_postgres(30)
        admin = await asyncpg.connect(f"{POSTGRES_SERVER}/test", timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def wait_postgres(timeout: float) -> None:
    """Until the server accepts connections again (after a restart)."""
    import asyncpg

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(f"{POSTGRES_SERVER}/test", timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)  # polling the server's readiness
        else:
            await conn.close()
            return


def database(url: str) -> Database:
    """An engine without a pool: checks leave no connection behind (PostgreSQL can be
    dropped at once; SQLite files can be read byte by byte)."""
    return Database(url, poolclass=pool.NullPool)


@dataclass
class LedgerCheck:
    rows: list[UsageRecord]
    sqlite_integrity: str | None
    problems: list[str]

    def by_outcome(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.outcome] = counts.get(row.outcome, 0) + 1
        return counts

    @property
    def charged_nano(self) -> int:
        return sum(r.cost_nano or 0 for r in self.rows)


async def check_ledger(url: str, *, now_reservations_ok: bool = False) -> LedgerCheck:
    """The database's invariants after any fault:

    * SQLite: ``PRAGMA integrity_check`` is ``ok`` and no foreign key dangles;
    * the daily rollup equals the ledger, per workspace (totals and every breakdown);
    * no generation is charged twice (a generation id appears on at most one usage row);
    * no half-written chat: every answered row has its conversation and its messages;
    * no reservation outlives its chat (unless ``now_reservations_ok``: a killed worker's
      holds lapse at their expiry instead).
    """
    db = database(url)
    problems: list[str] = []
    integrity = None
    try:
        async with db.session() as session:
            if db.is_sqlite:
                integrity = (await session.execute(text("PRAGMA integrity_check"))).scalar_one()
                if integrity != "ok":
                    problems.append(f"integrity_check: {integrity}")
                dangling = (await session.execute(text("PRAGMA foreign_key_check"))).all()
                if dangling:
                    problems.append(f"foreign_key_check: {dangling}")
            rows = list((await session.scalars(select(UsageRecord).order_by(UsageRecord.id))).all())
            for ws in (await session.scalars(select(Workspace))).all():
                assert ws.id is not None
                window: dict[str, Any] = {"channel_id": None, "since": None, "until": None}
                rollup = await stores.summarize_usage(session, workspace_id=ws.id, **window)
                ledger = await stores.summarize_ledger(session, workspace_id=ws.id, **window)
                if rollup != ledger:
                    problems.append(f"workspace {ws.external_id}: rollup {rollup} != {ledger}")
            dupes = (
                await session.execute(
                    select(UsageRecord.generation_id, func.count())
                    .where(UsageRecord.generation_id.is_not(None))  # type: ignore[union-attr]
                    .group_by(UsageRecord.generation_id)
                    .having(func.count() > 1)
                )
            ).all()
            if dupes:
                problems.append(f"generations charged more than once: {dupes}")
            conversations = {c.id: c for c in (await session.scalars(select(Conversation))).all()}
            for row in rows:
                if row.outcome in ("ok", "cut_off"):
                    if row.conversation_id not in conversations:
                        problems.append(f"usage row {row.id} has no conversation")
                        continue
                    messages = await stores.get_messages(
                        session,
                        workspace_id=row.workspace_id,
                        conversation_id=row.conversation_id,  # type: ignore[arg-type]
                        limit=1000,
                    )
                    if not any(m.role == "user" for m in messages):
                        problems.append(f"usage row {row.id}: conversation without its prompt")
            held = (await session.execute(select(func.count(BudgetReservation.id)))).scalar_one()
            if held and not now_reservations_ok:
                problems.append(f"{held} budget reservation(s) left behind")
    finally:
        await db.dispose()
    return LedgerCheck(rows, integrity, problems)


def ledger_vs_provider(rows: list[UsageRecord], openrouter: FakeOpenRouter) -> list[str]:
    """Where the ledger differs from the provider's record of what it served (the fake's
    ``generations``): every generation it billed is on the ledger once, at what it billed, and
    the ledger charges nothing it did not bill. Empty when they agree."""
    billed = {
        gen_id: usd_to_nano(Decimal(str(g.data["total_cost"])))
        for gen_id, g in openrouter.generations.items()
    }
    recorded: dict[str, list[int | None]] = {}
    for row in rows:
        if row.generation_id is not None:
            recorded.setdefault(row.generation_id, []).append(row.cost_nano)
    problems = [
        f"{gen_id}: the provider billed {cost} nano-USD, the ledger has {recorded.get(gen_id, [])}"
        for gen_id, cost in billed.items()
        if cost and recorded.get(gen_id) != [cost]
    ]
    problems += [
        f"usage row {row.id} ({row.outcome}) charges {row.cost_nano} for "
        f"{row.generation_id}, billed {billed.get(row.generation_id or '')}"
        for row in rows
        if row.cost_nano and billed.get(row.generation_id or "") != row.cost_nano
    ]
    return problems


async def flights_left(url: str) -> int:
    """Chats in flight not settled yet (``chat_in_flight`` rows)."""
    db = database(url)
    try:
        async with db.session() as session:
            return int((await session.execute(select(func.count(ChatInFlight.id)))).scalar_one())  # type: ignore[arg-type]
    finally:
        await db.dispose()


async def wait_settled(
    url: str, openrouter: FakeOpenRouter, *, timeout: float = 30.0
) -> LedgerCheck:
    """Until no chat is left in flight and the ledger equals the provider's record (another
    process settles them: polled with a deadline); returns the final check."""
    deadline = time.monotonic() + timeout
    while True:
        check = await check_ledger(url, now_reservations_ok=True)
        left = await flights_left(url)
        differs = ledger_vs_provider(check.rows, openrouter)
        if not left and not differs:
            return check
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not settled after {timeout} s: {left} chat(s) in flight; {differs}"
            )
        await asyncio.sleep(0.2)  # polling another process's sweep


async def pg_cluster(action: str, timeout: float = 60.0) -> None:
    """``pg_ctlcluster <version> main stop|start|restart`` on this machine (as root); the
    version is found, not assumed. ``start``/``restart`` return once it accepts connections."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    proc = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, f"pg_ctlcluster {action}: {out.decode()}"
    if action != "stop":
        await wait_postgres(timeout)


def can_restart_postgres() -> bool:
    """Only root on a machine with a local ``pg_ctlcluster`` cluster (this one, and CI)."""
    return (
        os.geteuid() == 0
        and os.path.isdir("/etc/postgresql")
        and shutil.which("pg_ctlcluster") is not None
    )
