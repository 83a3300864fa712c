"""Soak: a few minutes of normal chats mixed with every fault kind, then the invariants.

    uv run python benchmarks/soak_faults.py                    # 150 s on SQLite
    uv run python benchmarks/soak_faults.py --seconds 60       # shorter
    uv run python benchmarks/soak_faults.py --postgres         # on PostgreSQL, with a restart

One ``routerbot slack`` worker process (SQLite in a temporary directory, or a fresh PostgreSQL
database) serves signed ``/chat`` commands sent at ``--rate`` a second, in several channels.
The fake OpenRouter and the fake Slack run in this process so each chat's fault can be
scripted: a provider fault at every point of a stream (HTTP 429/5xx storms, a 500 retried,
an error chunk, a malformed line, a dropped connection, before the first token or mid-stream,
a stall, a hang cut off by the read timeout, no usage, no cost), Slack's 429s and 5xx on the
bot's own calls, the same command delivered twice, the worker killed with SIGKILL mid-stream
(a fresh one takes over), and, on PostgreSQL as root, the database stopped and started again.

Each chat's fault rides on its own model id (``soak/<kind>``, allowlisted for the run), so what
the user saw can be checked against what was injected. At the end: a table of outcomes, and
the invariants: every chat got an answer or a one-line message (except those in flight when
the worker was killed), every answer shown with a footer is charged once, every failure
before any text is free, no generation is charged twice, the rollup equals the ledger, SQLite
passes ``PRAGMA integrity_check``, and the ledger equals the provider's record: the chats the
kills cut short were settled by the next worker (short leases for the run: ``LEASES``), and
every generation the fake OpenRouter billed is on the ledger once, at what it billed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.core.dispatch import INTERNAL_ERROR  # noqa: E402
from bot.core.pricing import usd_to_nano  # noqa: E402
from storage import stores  # noqa: E402
from storage.crypto import generate_key  # noqa: E402
from storage.models import Workspace  # noqa: E402
from tests.fakes.openrouter import FakeOpenRouter, Fault  # noqa: E402
from tests.fakes.openrouter_catalogue import FakeModel  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.integration.worker_support import (  # noqa: E402
    SlackClient,
    Worker,
    can_restart_postgres,
    check_ledger,
    database,
    flights_left,
    fresh_postgres,
    has_footer,
    ledger_vs_provider,
    pg_cluster,
    slack_env,
    start_worker,
    wait_healthy,
    wait_postgres,
)

KEY = "sk-or-v1-soak-faults-key-000000001"
ATTEMPTS = 3  # the adapter's first try and its two retries before the first token

#: kind -> (fault, scripted requests, expected outcome). Outcomes: "ok", "cut_off", "free"
#: (failed before any text, nothing charged).
PROVIDER_FAULTS: dict[str, tuple[Fault | None, int, str]] = {
    "normal": (None, 0, "ok"),
    "429 storm": (Fault.http(429, retry_after="1"), ATTEMPTS, "free"),
    "429 long retry-after": (Fault.http(429, retry_after="120"), 1, "free"),
    "500 once": (Fault.http(500), 1, "ok"),
    "502 storm": (Fault.http(502), ATTEMPTS, "free"),
    "503 storm": (Fault.http(503), ATTEMPTS, "free"),
    "error chunk first": (Fault.error_chunk(after=0), ATTEMPTS, "free"),
    "error chunk mid": (Fault.error_chunk(after=4), 1, "cut_off"),
    "malformed first": (Fault.malformed(after=0), ATTEMPTS, "free"),
    "malformed mid": (Fault.malformed(after=4), 1, "cut_off"),
    "drop first": (Fault.drop(after=0), 1, "ok"),
    "drop mid": (Fault.drop(after=4), 1, "cut_off"),
    "stall 3 s": (Fault.hang(after=4, seconds=3), 1, "ok"),
    "hang mid": (Fault.hang(after=4, seconds=3600), 1, "cut_off"),
    "no usage": (Fault.no_usage(), 1, "ok"),
    "no cost": (Fault.no_cost(), 1, "ok"),
}
SLACK_FAULTS = {
    "slack 429 on edit": ("chat.update", 429, 1),
    "slack 503 on post": ("chat.postMessage", 503, 1),
    "slack 500s on edit": ("chat.update", 500, 3),
}
#: The read timeout a hang must outlast (adapters.openai_compat.READ_TIMEOUT) and some slack.
HANG_SECONDS = 70.0
#: Leases short enough that a killed worker's chats are settled within the run, long enough to
#: outlast the 3 s PostgreSQL outage (a live worker's leases must not lapse meanwhile).
LEASES = {"ROUTERBOT_LEASE_SECONDS": "10", "ROUTERBOT_LEASE_RENEW_SECONDS": "2"}
#: How long the last worker may take to settle what the kills left (a lease and a sweep).
SETTLE_SECONDS = 30.0


@dataclass
class Chat:
    index: int
    kind: str
    channel: str
    question: str
    sent_at: float
    response_url: str = ""
    status: int = 0
    worker_generation: int = 0
    duplicate: bool = False
    outcome: str = ""


@dataclass
class Run:
    args: argparse.Namespace
    slack: FakeSlack
    openrouter: FakeOpenRouter
    client: SlackClient
    env: dict[str, str]
    cwd: Path
    url: str
    worker: Worker | None = None
    generation: int = 0
    kills: int = 0
    killed_generations: tuple[int, ...] = ()
    db_outages: int = 0
    outage_window: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        #: Clear while a worker restarts: requests wait, as behind a load balancer.
        self.ready = asyncio.Event()

    async def start_worker(self) -> None:
        self.ready.clear()
        self.worker = await start_worker("slack", self.env, cwd=self.cwd)
        await wait_healthy(self.worker)
        self.generation += 1
        self.ready.set()


def pick(rng: random.Random, elapsed: float, args: argparse.Namespace) -> str:
    """Half the chats are normal; the rest cycle through every fault kind at random."""
    if rng.random() < 0.5:
        return "normal"
    kinds = [k for k in [*PROVIDER_FAULTS, *SLACK_FAULTS, "duplicate"] if k != "normal"]
    if elapsed > args.seconds - HANG_SECONDS:
        kinds.remove("hang mid")  # it could not be cut off before the soak ends
    return rng.choice(kinds)


async def allowlist_fault_models(url: str) -> None:
    """Each fault kind gets its own model id, priced like a small model."""
    db = database(url)
    try:
        async with db.session() as session:
            from sqlalchemy import select

            ws = (await session.scalars(select(Workspace))).one()
            assert ws.id is not None
            for kind in PROVIDER_FAULTS:
                await stores.add_model(
                    session, workspace_id=ws.id, provider="openrouter",
                    model_id=model_of(kind), input_nano_per_1m=usd_to_nano(Decimal(1)),
                    output_nano_per_1m=usd_to_nano(Decimal(2)), cached_input_nano_per_1m=None,
                    added_by="soak",
                )  # fmt: skip
    finally:
        await db.dispose()


def model_of(kind: str) -> str:
    return "soak/" + kind.replace(" ", "-")


async def send(run: Run, chat: Chat) -> None:
    await run.ready.wait()
    assert run.worker is not None
    run_kind = chat.kind if chat.kind in PROVIDER_FAULTS else "normal"
    fault, times, _ = PROVIDER_FAULTS[run_kind]
    if fault is not None:
        run.openrouter.script(fault, model=model_of(run_kind), times=times)
    if chat.kind in SLACK_FAULTS:
        method, status, times = SLACK_FAULTS[chat.kind]
        run.slack.fail(method, status=status, retry_after=1 if status == 429 else None,
                       times=times)  # fmt: skip
    text = f"--model {model_of(run_kind)} {chat.question}"
    chat.worker_generation = run.generation
    try:
        if chat.kind == "duplicate":
            trigger = f"dup-{chat.index}"
            acks = await asyncio.gather(
                *(
                    run.client.command(
                        run.worker.url, "/chat", text, channel=chat.channel, trigger_id=trigger
                    )
                    for _ in range(2)
                )
            )
            chat.response_url = acks[0].response_url
            chat.duplicate = True
            chat.status = max(a.status for a in acks)
        else:
            acked = await run.client.command(run.worker.url, "/chat", text, channel=chat.channel)
            chat.response_url, chat.status = acked.response_url, acked.status
    except aiohttp.ClientError:
        chat.status = -1


def messages_for(run: Run, chat: Chat) -> list[str]:
    return [
        m.text
        for m in run.slack.posted(chat.channel, top_level=True)
        if f"&gt; {chat.question}\n" in m.history[0]
    ]


def classify(run: Run, chat: Chat) -> str:
    texts = messages_for(run, chat)
    replies = run.client.replies_to(chat.response_url)
    lost = chat.worker_generation in run.killed_generations
    if chat.status != 200:
        return "not delivered (worker restarting)"
    if len(texts) > 1:
        return "VIOLATION: answered twice"
    if texts:
        text = texts[0]
        warnings = [line for line in text.splitlines() if line.startswith("⚠")]
        if "Traceback" in text or len(warnings) > 1:
            return "VIOLATION: unclear message"
        if has_footer(text):
            return "cut off, partial kept" if warnings else "answered"
        if warnings and warnings[0].endswith("Nothing was charged."):
            return "failed before text, told, free"
        if warnings:
            return "failed, told (generic)"
        if replies:
            return "Slack refused the final edit, told privately"
        return "lost in flight (worker killed)" if lost else "VIOLATION: no final state"
    if replies:
        if any("\n" in r or "Traceback" in r for r in replies):
            return "VIOLATION: unclear private reply"
        if any(INTERNAL_ERROR in r for r in replies):
            return "told privately: something went wrong (e.g. the database was down)"
        return "told privately (nothing posted)"
    return "lost in flight (worker killed)" if lost else "VIOLATION: no response"


async def chaos(run: Run, started: float) -> None:
    """SIGKILL the worker mid-stream (twice), and stop PostgreSQL for a few seconds once."""
    plan = [(0.35, "kill"), (0.7, "kill")]
    if run.args.postgres and can_restart_postgres():
        plan.append((0.5, "db"))
    for when, what in sorted(plan):
        await asyncio.sleep(max(0.0, started + when * run.args.seconds - time.monotonic()))
        if what == "kill":
            assert run.worker is not None
            run.ready.clear()
            run.worker.kill()
            await run.worker.stop()
            run.killed_generations += (run.generation,)
            run.kills += 1
            await run.start_worker()
        else:
            begin = time.monotonic()
            await pg_cluster("stop")
            await asyncio.sleep(3)  # the database is gone for a few seconds of traffic
            await pg_cluster("start")
            await wait_postgres(30)
            run.db_outages += 1
            run.outage_window = (begin, time.monotonic())


async def soak(args: argparse.Namespace, url: str, tmp: Path) -> int:
    rng = random.Random(args.seed)
    async with (
        FakeSlack() as slack,
        FakeOpenRouter(valid_keys=(KEY,), words_delay=args.delay, answer_words=args.words) as fo,
        aiohttp.ClientSession() as http,
    ):
        # routerbot's catalogue follows the provider's: a model it does not list is retired.
        for kind in PROVIDER_FAULTS:
            fo.add_model(FakeModel(model_of(kind), kind, prompt="0.000001", completion="0.000002"))
        team = slack.add_team("T1")
        env = slack_env(
            tmp, database_url=url, secret_key=generate_key(), slack=slack,
            bot_token=team.bot_token, openrouter_url=fo.base_url, **LEASES,
        )  # fmt: skip
        run = Run(args, slack, fo, SlackClient(slack, http), env, tmp, url)
        try:
            return await _soak(run, rng)
        finally:
            if run.worker is not None and run.worker.alive:
                await run.worker.stop()


async def _soak(run: Run, rng: random.Random) -> int:
    args, slack, url = run.args, run.slack, run.url
    await run.start_worker()
    assert run.worker is not None
    acked = await run.client.command(run.worker.url, "/apikey", f"set {KEY}", user="UADMIN")
    await slack.wait_for(lambda: bool(run.client.replies(acked)), 10)
    await allowlist_fault_models(url)

    chats: list[Chat] = []
    started = time.monotonic()
    chaos_task = asyncio.create_task(chaos(run, started))
    pending: set[asyncio.Task[None]] = set()
    i = 0
    while (elapsed := time.monotonic() - started) < args.seconds:
        kind = pick(rng, elapsed, args)
        chat = Chat(i, kind, f"C{i % 8}", f"soak {i}", time.monotonic())
        chats.append(chat)
        task = asyncio.create_task(send(run, chat))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
        await asyncio.sleep(rng.expovariate(args.rate))
    await chaos_task
    await asyncio.gather(*pending)
    print(f"sent {len(chats)} chats in {args.seconds:g} s; draining …", file=sys.stderr)
    # Until every chat reached a final state (a hang is cut off by the read timeout).
    drain_until = time.monotonic() + HANG_SECONDS + 10
    while time.monotonic() < drain_until and any(
        classify(run, c).startswith("VIOLATION: no") for c in chats
    ):
        await asyncio.sleep(0.5)
    for chat in chats:
        chat.outcome = classify(run, chat)
    # Until the last worker has settled the chats the kills cut short (their leases lapse).
    settle_until = time.monotonic() + SETTLE_SECONDS
    while await flights_left(url) and time.monotonic() < settle_until:
        await asyncio.sleep(0.5)
    assert run.worker is not None
    status = await run.worker.stop()
    log = run.worker.stderr_text()
    return await report(args, run, chats, url, status, log)


async def report(
    args: argparse.Namespace, run: Run, chats: list[Chat], url: str, status: int, log: str
) -> int:
    outcomes = collections.Counter(c.outcome for c in chats)
    kinds = collections.Counter(c.kind for c in chats)
    check = await check_ledger(url, now_reservations_ok=True)
    rows = check.by_outcome()
    answered = outcomes["answered"] + outcomes["cut off, partial kept"]
    refused_final = outcomes["Slack refused the final edit, told privately"]
    lost = outcomes["lost in flight (worker killed)"]
    free = outcomes["failed before text, told, free"]
    charged_rows = rows.get("ok", 0) + rows.get("cut_off", 0)
    problems = list(check.problems)
    problems += [f"{n} chat(s): {o}" for o, n in outcomes.items() if o.startswith("VIOLATION")]
    if not answered <= charged_rows <= answered + refused_final + lost:
        problems.append(
            f"charged rows {charged_rows} not within answers shown {answered} "
            f"(+ {refused_final} refused final edits + {lost} lost in flight)"
        )
    if rows.get("error", 0) < free:
        problems.append(f"{free} free failures shown but only {rows.get('error', 0)} error rows")
    if any(r.outcome == "error" and r.cost_nano for r in check.rows):
        problems.append("a failure before any text was charged")
    for chat in chats:
        expected = PROVIDER_FAULTS.get(chat.kind, (None, 0, ""))[2]
        if expected == "free" and chat.outcome in ("answered", "cut off, partial kept"):
            problems.append(f"chat {chat.index} ({chat.kind}) answered despite its fault")
        if chat.kind == "normal" and chat.outcome == "told privately (nothing posted)":
            # No fault and no outage to explain it: a chat that should have been answered.
            problems.append(f"chat {chat.index} (no fault) was refused in a private reply")
    if status != 0:
        problems.append(f"the last worker exited with {status}:\n{log[-2000:]}")
    unsettled = await flights_left(url)
    if unsettled:
        problems.append(f"{unsettled} chat(s) still in flight: never settled")
    provider_diff = ledger_vs_provider(check.rows, run.openrouter)
    problems += provider_diff
    billed = sum(
        usd_to_nano(Decimal(str(g.data["total_cost"]))) for g in run.openrouter.generations.values()
    )
    if billed != check.charged_nano:
        problems.append(f"the provider billed {billed} nano-USD, the ledger charges "
                        f"{check.charged_nano}")  # fmt: skip

    print(f"\nSoak: {args.seconds:g} s, {len(chats)} chats at ~{args.rate:g}/s on "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}; {run.kills} SIGKILL(s), "
          f"{run.db_outages} database outage(s)\n")  # fmt: skip
    print("| injected | chats |\n| --- | ---: |")
    for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"| {kind} | {n} |")
    print("\n| outcome the user saw | chats |\n| --- | ---: |")
    for outcome, n in sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"| {outcome} | {n} |")
    print("\n| ledger | rows |\n| --- | ---: |")
    for outcome, n in sorted(rows.items()):
        print(f"| {outcome} | {n} |")
    print(f"| charged in total | ${check.charged_nano / 1e9:.6f} |")
    sources = collections.Counter(r.cost_source for r in check.rows if r.outcome != "error")
    print("\n| cost source (chats) | rows |\n| --- | ---: |")
    for source, n in sorted(sources.items()):
        print(f"| {source} | {n} |")
    served = len(run.openrouter.generations)
    print(f"\nprovider's record: {served} generations, ${billed / 1e9:.6f} billed")
    integrity = check.sqlite_integrity or "n/a (PostgreSQL)"
    print(f"\ninvariants: rollup = ledger, generations charged once, integrity_check {integrity}, "
          f"ledger = provider's record ({'yes' if not provider_diff and billed == check.charged_nano else 'NO'})")  # fmt: skip
    if problems:
        print("FAILED:")
        for problem in problems[:20]:
            print(f"  ! {problem}")
        return 1
    print("all invariants hold")
    return 0


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    if args.postgres:
        async with fresh_postgres() as url:
            return await soak(args, url, tmp)
    return await soak(args, f"sqlite:///{tmp / 'soak.db'}", tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--rate", type=float, default=3.0, help="chats a second (Poisson)")
    parser.add_argument("--words", type=int, default=12)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds between words")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--seed", type=int, default=6)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
