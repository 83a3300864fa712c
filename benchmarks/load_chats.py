"""Load: 1,000 concurrent in-flight streamed chats on one ``routerbot slack``, then on two.

    uv run python benchmarks/load_chats.py                       # both scenarios, one table
    uv run python benchmarks/load_chats.py --scenarios one       # one worker, SQLite only
    uv run python benchmarks/load_chats.py --chats 300 --ramp 5  # smaller

Scenarios: ``one``: one ``routerbot slack`` process on SQLite (a temporary file); ``two``: two
processes on one fresh PostgreSQL database (``rb_bench_<hex>`` on the local server, dropped
afterwards), requests alternating between them as a load balancer would spread them.

Every piece runs in its own process, so the bot's event loop is measured alone: the fake
OpenRouter (``tests.fakes.openrouter``, streaming ``--words`` words ``--delay`` s apart), the
fake Slack Web API (this script in ``--fake-slack`` mode, with a small control route the driver
reads the messages from), each bot worker, and the driver (this process), which signs and
sends ``/chat`` commands evenly over ``--ramp`` seconds, keeps sending a cheap probe command
(``/routerbot``, help) every ``--probe-every`` seconds until the last answer is complete, and
samples each worker's RSS and CPU.

A chat is in flight from its command until its answer's final edit (the one with the cost
footer) reaches the fake Slack. Targets: every chat answered, none failed, peak RSS of each
worker ≤ 300 MB, ack p99 ≤ 50 ms over all requests (chats and probes, ramp and drain); the
table also shows how many chats were in flight at once. The ledger is checked afterwards:
one usage row per chat, all ``ok``, costs exact, rollup equal to the ledger, no generation
charged twice (SQLite also ``PRAGMA integrity_check``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage.crypto import generate_key  # noqa: E402
from tests.fakes.slack import FakeSlack, command_body, signed_headers  # noqa: E402
from tests.integration.worker_support import check_ledger  # noqa: E402

#: The footer closing a final answer; the model may be an alias (``~anthropic/…``), which
#: the workers' test helper's pattern does not allow.
FOOTER = re.compile(r"\n~?[\w./:@-]+ · (?:.* · )?\d+\.\d s$")

SECRET = "bench-signing-secret"
KEY = "sk-or-v1-bench-load-key-0000000001"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
TARGET_RSS = 300 * 2**20
TARGET_ACK_P99 = 0.050


# -- the fake Slack, in its own process -------------------------------------------------------


async def serve_fake_slack() -> None:
    """``--fake-slack``: serve the fake Slack Web API plus ``GET /bench/state`` (counts) and
    ``GET /bench/messages`` (every bot message: its first text, final text, edit times)."""
    slack = FakeSlack()
    await slack.start()
    team = slack.add_team("T1")

    async def state(_request: web.Request) -> web.Response:
        answered = sum(1 for m in slack.messages.values() if m.token and FOOTER.search(m.text))
        return web.json_response(
            {
                "answered": answered,
                "messages": len(slack.messages),
                "calls": len(slack.calls),
                "responses": len(slack.responses),
            }
        )

    async def messages(_request: web.Request) -> web.Response:
        data = [
            {
                "channel": m.channel,
                "ts": m.ts,
                "first": m.history[0],
                "text": m.text,
                "edits": m.update_times,
                "thread": m.thread_ts,
            }
            for m in slack.messages.values()
            if m.token
        ]
        responses = [[rid, payload.get("text", "")] for rid, payload in slack.responses]
        violations = slack.update_violations(0.95)
        return web.json_response(
            {"messages": data, "responses": responses, "violations": violations}
        )

    app = web.Application()
    app.router.add_get("/bench/state", state)
    app.router.add_get("/bench/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    control = f"http://127.0.0.1:{runner.addresses[0][1]}"
    print(json.dumps({"api": slack.base_url, "root": slack.root_url, "control": control,
                      "token": team.bot_token}), flush=True)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await slack.stop()


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def first_line(*argv: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line:
        raise SystemExit(f"{argv} exited before it was ready")
    return proc, line.decode().strip()


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = 30) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()


@dataclass
class Bot:
    proc: asyncio.subprocess.Process
    url: str
    log: Path
    peak_rss: int = 0
    cpu_start: float = 0.0
    cpu_seconds: float = 0.0
    cpu_peak: float = 0.0


async def start_bots(
    n: int,
    database_url: str,
    fakes: dict[str, str],
    openrouter: str,
    tmp: Path,
    extra_env: list[str] = (),  # type: ignore[assignment]
) -> list[Bot]:
    """``n`` workers started at the same moment (they share the database and its migration)."""
    secret_key = generate_key()
    bots = []
    for i in range(n):
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "DATABASE_URL": database_url,
            "ROUTERBOT_SECRET_KEY": secret_key,
            "ROUTERBOT_ADMINS": "slack:UADMIN",
            "ROUTERBOT_LOG_LEVEL": "WARNING",
            "ROUTERBOT_DATA_DIR": str(tmp / f"data{i}"),
            "OPENROUTER_BASE_URL": openrouter,
            "SLACK_API_URL": fakes["api"],
            "SLACK_BOT_TOKEN": fakes["token"],
            "SLACK_SIGNING_SECRET": SECRET,
            # Answers are matched to chats by the question atop their message: the chat.update
            # shape (native streaming puts the answer in the question's thread).
            "SLACK_STREAMING": "update",
            "PORT": str(port),
            **dict(item.split("=", 1) for item in extra_env),
        }
        log = tmp / f"worker{i}.log"
        with log.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "slack", env=env, cwd=tmp,
                stdout=sink, stderr=sink, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        bots.append(Bot(proc, f"http://127.0.0.1:{port}", log))
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        for bot in bots:
            while True:
                if bot.proc.returncode is not None:
                    raise SystemExit(f"a worker exited:\n{bot.log.read_text()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(bot.url + "/healthz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
    return bots


async def py_spy(
    args: argparse.Namespace, bot: Bot, name: str
) -> asyncio.subprocess.Process | None:
    """``--py-spy DIR``: profile a worker (``uv run --with py-spy`` puts py-spy on PATH)."""
    if not args.py_spy:
        return None
    Path(args.py_spy).mkdir(parents=True, exist_ok=True)
    return await asyncio.create_subprocess_exec(
        "py-spy", "record", "--nonblocking", "--pid", str(bot.proc.pid), "--format", "raw",
        "--rate", "100",
        "-o", str(Path(args.py_spy) / f"{name}.txt"), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def sample(bots: list[Bot], stop: asyncio.Event) -> None:
    procs = [psutil.Process(b.proc.pid) for b in bots]
    for p in procs:
        p.cpu_percent()
    while not stop.is_set():
        for bot, p in zip(bots, procs, strict=True):
            with contextlib.suppress(psutil.Error):
                bot.peak_rss = max(bot.peak_rss, p.memory_info().rss)
                bot.cpu_peak = max(bot.cpu_peak, p.cpu_percent())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


def cpu_of(bot: Bot) -> float:
    times = psutil.Process(bot.proc.pid).cpu_times()
    return float(times.user + times.system)


# -- the driver -------------------------------------------------------------------------------


@dataclass
class Sent:
    kind: str  # "chat", "probe"
    index: int
    worker: int
    scheduled: float
    sent_at: float = 0.0
    ack: float = 0.0
    status: int = 0
    final_at: float | None = None
    outcome: str = ""


@dataclass
class Result:
    name: str
    workers: int
    backend: str
    chats: list[Sent] = field(default_factory=list)
    probes: list[Sent] = field(default_factory=list)
    bots: list[Bot] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    violations: int = 0
    log_errors: list[str] = field(default_factory=list)
    ledger_ok: bool = False
    ledger_note: str = ""
    wall: float = 0.0
    upstream: float = 0.0


class Driver:
    def __init__(self, http: aiohttp.ClientSession, fakes: dict[str, str], bots: list[Bot]):
        self.http = http
        self.fakes = fakes
        self.bots = bots

    async def send(self, sent: Sent, command: str, text: str, *, user: str = "U1",
                   channel: str = "C1") -> Sent:  # fmt: skip
        body = command_body(
            command, text, team_id="T1", user_id=user, channel_id=channel,
            response_url=f"{self.fakes['root']}/respond/{sent.kind}{sent.index}",
            trigger_id=f"{sent.kind}-{sent.index}-{uuid.uuid4().hex}",
        )  # fmt: skip
        headers = {**signed_headers(body, SECRET),
                   "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
        sent.sent_at = time.monotonic()
        try:
            async with self.http.post(
                self.bots[sent.worker].url + "/slack/events", data=body, headers=headers
            ) as resp:
                await resp.read()
                sent.status = resp.status
        except aiohttp.ClientError as exc:
            sent.status = -1
            sent.outcome = f"{type(exc).__name__}"
        sent.ack = time.monotonic() - sent.sent_at
        return sent

    async def state(self) -> dict[str, Any]:
        async with self.http.get(self.fakes["control"] + "/bench/state") as resp:
            return dict(await resp.json())

    async def messages(self) -> dict[str, Any]:
        async with self.http.get(self.fakes["control"] + "/bench/messages") as resp:
            return dict(await resp.json())


async def ping(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(url + "/healthz") as resp:
        await resp.read()


async def at(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def run_scenario(args: argparse.Namespace, name: str, workers: int, backend: str,
                       fakes: dict[str, str], openrouter: str) -> Result:  # fmt: skip
    result = Result(name, workers, backend)
    tmp = Path(tempfile.mkdtemp(prefix=f"load-{name}-"))
    pg_name = None
    try:
        if backend == "sqlite":
            database_url = f"sqlite:///{tmp / 'bench.db'}"
        else:
            import asyncpg

            pg_name = f"rb_bench_{uuid.uuid4().hex[:12]}"
            admin = await asyncpg.connect(f"{POSTGRES}/test")
            await admin.execute(f'CREATE DATABASE "{pg_name}"')
            await admin.close()
            database_url = f"{POSTGRES}/{pg_name}"
        bots = await start_bots(workers, database_url, fakes, openrouter, tmp, args.bot_env)
        result.bots = bots
        spies = [await py_spy(args, bot, f"{name}-worker{i}") for i, bot in enumerate(bots)]
        try:
            await drive(args, result, fakes, bots)
        finally:
            for spy in spies:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    await spy.wait()
            for bot in bots:
                await stop_process(bot.proc)
        errors = [
            line
            for bot in bots
            for line in bot.log.read_text(errors="replace").splitlines()
            if " ERROR " in line or line.startswith(("sqlalchemy.", "asyncpg.", "httpx."))
        ]
        result.log_errors = errors
        if args.keep_logs:
            keep = Path(args.keep_logs)
            keep.mkdir(parents=True, exist_ok=True)
            for i, bot in enumerate(bots):
                shutil.copy(bot.log, keep / f"{name}-worker{i}.log")
        check = await check_ledger(database_url)
        expected = len(result.chats) + workers  # and each worker's warm-up chat
        outcomes = check.by_outcome()
        costs = {r.cost_nano for r in check.rows if r.outcome == "ok"}
        problems = list(check.problems)
        if outcomes != {"ok": expected}:
            problems.append(f"usage rows {outcomes}, expected {expected} ok")
        if len(costs) != 1 or check.charged_nano != expected * next(iter(costs), 0):
            problems.append(f"costs not exact: {sorted(costs)[:5]}")
        if check.sqlite_integrity not in (None, "ok"):
            problems.append(f"integrity_check: {check.sqlite_integrity}")
        result.ledger_ok = not problems
        result.ledger_note = "; ".join(problems)[:300]
    finally:
        if pg_name is not None:
            import asyncpg

            admin = await asyncpg.connect(f"{POSTGRES}/test")
            await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            await admin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


async def drive(args: argparse.Namespace, result: Result, fakes: dict[str, str],
                bots: list[Bot]) -> None:  # fmt: skip
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        driver = Driver(http, fakes, bots)
        # Slack's senders keep connections open: open them before measuring.
        await asyncio.gather(*(ping(http, b.url) for b in bots for _ in range(args.connections)))
        setup = Sent("setup", 0, 0, 0.0)
        await driver.send(setup, "/apikey", f"set {KEY}", user="UADMIN")
        async with asyncio.timeout(30):
            while (await driver.state())["responses"] < 1:
                await asyncio.sleep(0.1)
        # A warm-up chat on each worker: its first chat loads what the chat path imports
        # lazily. Once its answer is posted that is done; it finishes during the run.
        for i in range(len(bots)):
            await driver.send(Sent("warm", i, i, 0.0), "/chat", f"warm {i}", channel="CWARM")
        async with asyncio.timeout(60):
            while (await driver.state())["messages"] < len(bots):
                await asyncio.sleep(0.1)
        await asyncio.sleep(2 * args.delay)  # its first words, too

        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(sample(bots, stop_sampling))
        for bot in bots:
            bot.cpu_start = cpu_of(bot)
        n = args.chats
        start = time.monotonic() + 0.5
        spacing = args.ramp / n
        result.chats = [Sent("chat", i, i % len(bots), start + i * spacing) for i in range(n)]

        async def one(sent: Sent) -> Sent:
            await at(sent.scheduled)
            return await driver.send(sent, "/chat", f"q {sent.index}",
                                     channel=f"C{sent.index % args.channels:03d}")  # fmt: skip

        all_done = asyncio.Event()

        in_flight: set[asyncio.Task[Sent]] = set()

        async def probes() -> None:
            i = 0
            while not all_done.is_set():
                sent = Sent("probe", i, i % len(bots), start + i * args.probe_every)
                result.probes.append(sent)
                await at(sent.scheduled)
                if all_done.is_set():
                    result.probes.pop()
                    return
                task = asyncio.create_task(driver.send(sent, "/routerbot", "", user="UPROBE"))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                i += 1

        prober = asyncio.create_task(probes())
        chats = asyncio.gather(*(one(s) for s in result.chats))
        deadline = start + args.ramp + args.timeout
        expected = n + len(bots)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if chats.done() and (await driver.state())["answered"] >= expected:
                break
        all_done.set()
        await chats
        await prober
        await asyncio.gather(*in_flight)  # the last probes' acks
        for bot in bots:
            bot.cpu_seconds = cpu_of(bot) - bot.cpu_start
        stop_sampling.set()
        await sampler
        result.wall = time.monotonic() - start
        state = await driver.messages()
    collect(result, state)


def collect(result: Result, state: dict[str, Any]) -> None:
    finals: dict[str, tuple[float | None, str]] = {}
    for m in state["messages"]:
        first = m["first"]
        if "&gt; q " not in first:
            continue
        index = first.split("&gt; q ", 1)[1].split("\n", 1)[0]
        text = m["text"]
        final_at = m["edits"][-1] if m["edits"] and FOOTER.search(text) else None
        finals[index] = (final_at, text)
    replies = {rid: text for rid, text in state["responses"]}
    result.violations = int(state["violations"])
    for chat in result.chats:
        final_at, text = finals.get(str(chat.index), (None, ""))
        chat.final_at = final_at
        if chat.status != 200:
            result.failures.append(f"chat {chat.index}: ack {chat.status} {chat.outcome}")
        elif f"chat{chat.index}" in replies:
            result.failures.append(f"chat {chat.index}: {replies[f'chat{chat.index}'][:120]}")
        elif final_at is None:
            result.failures.append(f"chat {chat.index}: no final answer ({text[-80:]!r})")
        elif "⚠" in text:
            result.failures.append(f"chat {chat.index}: {text.splitlines()[-3][:120]}")
    for probe in result.probes:
        if probe.status != 200:
            result.failures.append(f"probe {probe.index}: ack {probe.status} {probe.outcome}")


# -- the report -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def peak_in_flight(chats: list[Sent]) -> int:
    events = []
    for c in chats:
        if c.final_at is not None:
            events += [(c.sent_at, 1), (c.final_at, -1)]
    current = peak = 0
    for _, delta in sorted(events):
        current += delta
        peak = max(peak, current)
    return peak


def rows_for(args: argparse.Namespace, r: Result) -> list[tuple[str, str]]:
    acks = [c.ack * 1000 for c in r.chats if c.status == 200]
    probe_acks = [p.ack * 1000 for p in r.probes if p.status == 200]
    all_acks = acks + probe_acks
    finals = [(c.final_at - c.sent_at) * 1000 for c in r.chats if c.final_at is not None]
    lag = [(c.sent_at - c.scheduled) * 1000 for c in r.chats]
    stream = args.words * args.delay * 1000
    peak_rss = max(b.peak_rss for b in r.bots) if r.bots else 0
    cpu = sum(b.cpu_seconds for b in r.bots)
    ok = (
        not r.failures
        and peak_rss <= TARGET_RSS
        and pct(all_acks, 99) <= TARGET_ACK_P99 * 1000
        and r.ledger_ok
        and not r.log_errors
    )
    return [
        ("workers (database)", f"{r.workers} ({r.backend})"),
        ("chats sent over the ramp", f"{len(r.chats)} in {args.ramp:g} s"),
        ("peak chats in flight at once", f"{peak_in_flight(r.chats)}"),
        ("failures", f"{len(r.failures)}"),
        ("ack p50 / p99 / max, chats", f"{pct(acks, 50):.1f} / {pct(acks, 99):.1f} / {max(acks or [0]):.0f} ms"),
        ("ack p50 / p99 / max, probes", f"{pct(probe_acks, 50):.1f} / {pct(probe_acks, 99):.1f} / {max(probe_acks or [0]):.0f} ms"),
        ("ack p99, all requests", f"{pct(all_acks, 99):.1f} ms"),
        ("time to final answer p50 / p99", f"{pct(finals, 50) / 1000:.1f} / {pct(finals, 99) / 1000:.1f} s"),
        ("  of which upstream stream", f"{stream / 1000:.1f} s"),
        ("peak RSS (largest worker)", f"{peak_rss / 2**20:.0f} MiB"),
        ("CPU per chat (all workers)", f"{cpu / max(1, len(r.chats)) * 1000:.1f} ms"),
        ("peak CPU (busiest worker)", f"{max((b.cpu_peak for b in r.bots), default=0):.0f} %"),
        ("chat.update < 0.95 s apart", f"{r.violations}"),
        ("driver lag p99", f"{pct(lag, 99):.1f} ms"),
        ("ledger checks", "ok" if r.ledger_ok else f"FAILED: {r.ledger_note}"),
        ("targets met", "yes" if ok else "NO"),
    ]  # fmt: skip


def report(args: argparse.Namespace, results: list[Result]) -> None:
    print(
        f"\nLoad: {args.chats} streamed /chat over {args.ramp:g} s, upstream {args.words} words "
        f"{args.delay * 1000:.0f} ms apart, probe every {args.probe_every * 1000:.0f} ms; "
        f"{os.cpu_count()} CPUs. Targets: 0 failures, RSS ≤ 300 MiB, ack p99 ≤ 50 ms.\n"
    )
    columns = [rows_for(args, r) for r in results]
    names = [name for name, _ in columns[0]]
    width = max(len(n) for n in names)
    widths = [max(len(v) for _, v in col) for col in columns]
    print("| " + " | ".join(["", *(r.name for r in results)]) + " |")
    print("| --- |" + " ---: |" * len(results))
    for i, name in enumerate(names):
        values = [col[i][1] for col in columns]
        print(
            "| "
            + " | ".join(
                [name.ljust(width), *(v.rjust(w) for v, w in zip(values, widths, strict=True))]
            )
            + " |"
        )
    for r in results:
        for failure in r.failures[:8]:
            print(f"  ! {r.name}: {failure}")
        if r.log_errors:
            print(f"  ! {r.name}: {len(r.log_errors)} error lines in the worker logs, e.g.:")
            for line in sorted(set(r.log_errors), key=r.log_errors.index)[:5]:
                print(f"      {line[:160]}")


async def main_async(args: argparse.Namespace) -> list[Result]:
    openrouter_proc, openrouter = await first_line(
        sys.executable, "-m", "tests.fakes.openrouter", "--words", str(args.words),
        "--delay", str(args.delay), "--key", KEY,
    )  # fmt: skip
    results = []
    try:
        for name in args.scenarios:
            workers, backend = {"one": (1, "sqlite"), "two": (2, "postgresql")}[name]
            print(f"running {name}: {workers} worker(s) on {backend} …", file=sys.stderr)
            # A fresh fake Slack per scenario: its messages are what the scenario is judged by.
            slack_proc, line = await first_line(sys.executable, __file__, "--fake-slack")
            try:
                fakes = json.loads(line)
                results.append(await run_scenario(args, name, workers, backend, fakes, openrouter))
            finally:
                await stop_process(slack_proc)
    finally:
        await stop_process(openrouter_proc)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--ramp", type=float, default=40.0, help="seconds to send them over")
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds between words")
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--probe-every", type=float, default=0.1)
    parser.add_argument("--connections", type=int, default=50, help="kept-alive, per worker")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--bot-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the workers (repeatable)")  # fmt: skip
    parser.add_argument("--py-spy", default=None, help="profile the workers into this dir")
    parser.add_argument("--keep-logs", default=None, help="copy the workers' logs to this dir")
    parser.add_argument("--scenarios", nargs="+", default=["one", "two"], choices=["one", "two"])
    parser.add_argument("--fake-slack", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_slack:
        asyncio.run(serve_fake_slack())
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    results = asyncio.run(main_async(args))
    report(args, results)
    sys.exit(0 if all(not r.failures and r.ledger_ok for r in results) else 1)


if __name__ == "__main__":
    main()
