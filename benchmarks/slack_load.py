"""Slack load: 200 concurrent ``/chat`` commands at one ``routerbot slack`` process.

    uv run python benchmarks/slack_load.py [--chats 200] [--words 30] [--delay 0.02]
                                           [--channels 20] [--database-url postgresql://…]

``routerbot slack`` runs as a real process (HTTP mode, SQLite in a temporary directory unless
``--database-url`` is given), with a fake OpenRouter process behind ``OPENROUTER_BASE_URL``
(streaming ``--words`` words, ``--delay`` seconds apart) and a fake Slack Web API (in this
process) behind ``SLACK_API_URL``. The client first opens its connections (Slack's senders
keep theirs alive), warms up with ``/apikey set`` and one chat, then sends all commands, signed,
at once. ``--budget USD`` sets a workspace spend limit during the warm-up, so every chat goes
through budget admission (the locked transaction and the capped answer). ``--profile PATH``
runs the bot under cProfile. ``--reference`` runs the same load
against ``slack_reference_responder.py`` instead: a bare aiohttp responder with no framework and
no database, the floor that this machine and harness put under any Python bot.

Measured: ack latency (request sent to HTTP response), time to the final message (request sent
to the ``chat.update`` that carries the footer), overhead over the upstream (time to final
minus the upstream's own time, measured first with the same number of direct concurrent
streams), failures (non-200 acks, error replies, answers without footer), peak RSS of the
``routerbot slack`` process, and ``chat.update`` rate-limit violations (two edits of one message
less than 0.95 s apart); also the bot's CPU time per chat, since on a small machine the process
is CPU-bound long before it is I/O-bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.load_common import (  # noqa: E402
    KEY,
    Sampler,
    Summary,
    Usage,
    bot_command,
    compare,
    cpu_seconds,
    free_port,
    pct,
    profiling,
    sample_processes,
    start_openrouter,
    summarize,
    upstream_baseline,
)
from storage.crypto import generate_key  # noqa: E402
from tests.fakes.slack import FakeSlack, command_body, signed_headers  # noqa: E402

SECRET = "bench-signing-secret"
FOOTER_MARK = " out · "


@dataclass
class Chat:
    index: int
    channel: str
    response_url: str
    sent_at: float = 0.0
    ack_seconds: float = 0.0
    status: int = 0
    final_at: float | None = None


@dataclass
class Results:
    upstream: list[float] = field(default_factory=list)
    chats: list[Chat] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    violations: int = 0
    cpu_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    #: Web API calls the bot made during the burst, by method.
    calls: dict[str, int] = field(default_factory=dict)


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        while True:
            if proc.returncode is not None:
                raise SystemExit(f"routerbot slack exited with {proc.returncode}")
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


async def ping(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(url + "/healthz") as resp:
        await resp.read()


async def send(http: aiohttp.ClientSession, url: str, slack: FakeSlack, chat: Chat | None,
               text: str, *, user: str = "U1", command: str = "/chat") -> Chat:  # fmt: skip
    chat = chat or Chat(-1, "CWARM", slack.response_url())
    body = command_body(command, text, team_id="T1", user_id=user, channel_id=chat.channel,
                        response_url=chat.response_url)  # fmt: skip
    headers = {**signed_headers(body, SECRET), "Content-Type": "application/x-www-form-urlencoded"}
    chat.sent_at = time.monotonic()
    async with http.post(url + "/slack/events", data=body, headers=headers) as resp:
        await resp.read()
        chat.status = resp.status
    chat.ack_seconds = time.monotonic() - chat.sent_at
    return chat


def final_time(slack: FakeSlack, chat: Chat) -> float | None:
    """When the answer to ``chat`` got its footer: the last edit (or the post) of the message
    carrying it, the question's own message (``chat.update``) or a reply in its thread (native
    streaming)."""
    question = re.compile(rf"question {chat.index}(\n|$)")
    for root in slack.posted(chat.channel, top_level=True):
        if not question.search(root.history[0]):
            continue
        for message in (root, *slack.thread(chat.channel, root.ts)):
            if FOOTER_MARK in message.text:
                return message.update_times[-1] if message.update_times else message.posted_at
    return None


async def run(args: argparse.Namespace, reference: bool) -> Results:
    results = Results()
    openrouter, or_url = await start_openrouter(args.words, args.delay)
    tmp = Path(tempfile.mkdtemp(prefix="slack-load-"))
    try:
        results.upstream = await upstream_baseline(or_url, args.chats)
        async with FakeSlack() as slack:
            team = slack.add_team("T1")
            env = {
                **os.environ,
                "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.db'}",
                "ROUTERBOT_SECRET_KEY": generate_key(),
                "ROUTERBOT_ADMINS": "slack:UADMIN",
                "ROUTERBOT_LOG_LEVEL": "WARNING",
                "OPENROUTER_BASE_URL": or_url,
                "SLACK_API_URL": slack.base_url,
                "SLACK_BOT_TOKEN": team.bot_token,
                "SLACK_SIGNING_SECRET": SECRET,
                "REFERENCE_API_KEY": KEY,
                "SLACK_STREAMING": args.streaming,
            }
            for name in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
                env.pop(name, None)
            command = bot_command(
                [str(REPO / "benchmarks" / "slack_reference_responder.py")]
                if reference
                else ["-m", "bot", "slack"],
                args.profile,
            )
            ports = [free_port() for _ in range(args.workers)]
            bots = [
                await asyncio.create_subprocess_exec(
                    sys.executable, *command, env={**env, "PORT": str(port)}, cwd=tmp
                )
                for port in ports
            ]
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            pids = [bot.pid for bot in bots]
            stop = asyncio.Event()
            try:
                await asyncio.gather(*(wait_healthy(u, b) for u, b in zip(urls, bots, strict=True)))
                sampler = asyncio.create_task(sample_processes(pids, results.usage, stop))
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                    # Open the connections first, as Slack's senders keep theirs alive.
                    await asyncio.gather(
                        *(ping(http, urls[i % len(urls)]) for i in range(args.chats))
                    )
                    # Warm-up: the key (creates and seeds the workspace), then a chat each.
                    setup = await send(http, urls[0], slack, None, f"set {KEY}", user="UADMIN",
                                       command="/apikey")  # fmt: skip
                    await slack.wait_for(lambda: bool(slack.responses_to(setup.response_url)), 30)
                    if args.budget:
                        limit = await send(http, urls[0], slack, None, f"set {args.budget}",
                                           user="UADMIN", command="/budget")  # fmt: skip
                        await slack.wait_for(
                            lambda: bool(slack.responses_to(limit.response_url)), 30
                        )
                    for url in urls:
                        await send(http, url, slack, None, "warm up")

                    def warm() -> bool:
                        return sum(FOOTER_MARK in m.text for m in slack.posted("CWARM")) >= len(
                            urls
                        )

                    await slack.wait_for(warm, 30)
                    sampling = Sampler(args.py_spy)
                    await sampling.start(pids[0])
                    cpu_before = cpu_seconds(pids)
                    profiling(pids, True, args.profile)
                    calls_before = len(slack.calls)
                    results.chats = [
                        Chat(i, f"C{i % args.channels:03d}", slack.response_url())
                        for i in range(args.chats)
                    ]
                    await asyncio.gather(
                        *(
                            send(http, urls[c.index % len(urls)], slack, c, f"question {c.index}")
                            for c in results.chats
                        )
                    )
                    expected = len(results.chats) + len(urls)  # and the warm-ups

                    def done() -> bool:
                        return sum(FOOTER_MARK in m.text for m in slack.posted()) >= expected

                    with contextlib.suppress(TimeoutError):
                        await slack.wait_for(done, args.timeout)
                results.cpu_seconds = cpu_seconds(pids) - cpu_before
                profiling(pids, False, args.profile)
                await sampling.stop()
                stop.set()
                await sampler
                for chat in results.chats:
                    chat.final_at = final_time(slack, chat)
                    if chat.status != 200:
                        results.failures.append(f"chat {chat.index}: ack HTTP {chat.status}")
                    elif chat.final_at is None:
                        results.failures.append(f"chat {chat.index}: no final message")
                    replies = slack.responses_to(chat.response_url)
                    if replies:
                        results.failures.append(f"chat {chat.index}: {replies[0].get('text')}")
                results.violations = slack.update_violations(0.95)
                for call in slack.calls[calls_before:]:
                    if call.method != "response_url":
                        results.calls[call.method] = results.calls.get(call.method, 0) + 1
            finally:
                for bot in bots:
                    if bot.returncode is None:
                        bot.send_signal(signal.SIGINT)
                for bot in bots:
                    await bot.wait()
    finally:
        openrouter.terminate()
        await openrouter.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def summary(r: Results, reference: bool) -> Summary:
    return summarize(
        "reference" if reference else "routerbot",
        upstream=r.upstream,
        acks=[c.ack_seconds for c in r.chats],
        finals=[c.final_at - c.sent_at for c in r.chats if c.final_at is not None],
        failures=len(r.failures),
        violations=r.violations,
        peak_rss=r.usage.peak_rss,
        cpu_seconds=r.cpu_seconds,
        chats=len(r.chats),
    )


def report(args: argparse.Namespace, r: Results, reference: bool) -> None:
    acks = [c.ack_seconds * 1000 for c in r.chats]
    finals = [(c.final_at - c.sent_at) * 1000 for c in r.chats if c.final_at is not None]
    upstream_p50 = statistics.median(r.upstream) * 1000
    overhead = [f - upstream_p50 for f in finals]
    rows = [
        ("chats (concurrent)", f"{len(r.chats)}", ""),
        ("upstream stream time p50 / p99", f"{upstream_p50:.0f} / {pct(r.upstream, 99) * 1000:.0f} ms",
         f"{args.words} words, {args.delay * 1000:.0f} ms apart"),
        ("ack latency p50 / p99", f"{pct(acks, 50):.1f} / {pct(acks, 99):.1f} ms", "target p99 ≤ 50 ms"),
        ("time to final message p50 / p99", f"{pct(finals, 50):.0f} / {pct(finals, 99):.0f} ms", ""),
        ("overhead over upstream p50 / p99", f"{pct(overhead, 50):.0f} / {pct(overhead, 99):.0f} ms",
         "target p50 ≤ 20 ms"),
        ("failures", f"{len(r.failures)}", "target 0"),
        ("edit rate violations", f"{r.violations}",
         "edits (chat.update, appends, stops) of one message < 0.95 s apart"),
        ("Slack calls per chat", " ".join(f"{n / max(1, len(r.chats)):.1f}" for n in r.calls.values()),
         ", ".join(r.calls)),
        ("peak RSS of the (largest) bot process", f"{r.usage.peak_rss / 2**20:.0f} MiB", ""),
        ("CPU time of the bot process(es) per chat", f"{r.cpu_seconds / max(1, len(r.chats)) * 1000:.1f} ms",
         f"peak {max(r.usage.cpu or [0]):.0f} % of one CPU; {os.cpu_count()} CPUs on this machine"),
    ]  # fmt: skip
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    target = (
        "the reference responder (no framework, no database)"
        if reference
        else f"{'one' if args.workers == 1 else args.workers} `routerbot slack` "
        f"({'PostgreSQL' if args.database_url else 'SQLite'}, "
        f"SLACK_STREAMING={args.streaming}"
        f"{f', workspace limit ${args.budget}' if args.budget else ''})"
    )
    print(f"\nSlack load: {len(r.chats)} concurrent /chat at {target}\n")
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>{value_width}}  {note}")
    for failure in r.failures[:10]:
        print(f"  ! {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument(
        "--profile",
        default=None,
        help="profile the bot during the burst (cProfile, to PATH; with --compare PATH.routerbot "
        "and PATH.reference); read it with profile_by_library.py",
    )
    parser.add_argument(
        "--py-spy",
        default=None,
        help="sample the (first) bot with py-spy during the burst, collapsed stacks to PATH",
    )
    parser.add_argument(
        "--budget", default=None, help="a workspace spend limit in USD (every chat is admitted)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="bot processes on one database, chats spread over them (use PostgreSQL)",
    )
    parser.add_argument(
        "--streaming",
        choices=("auto", "update"),
        default="auto",
        help="SLACK_STREAMING for the bot: native streaming (auto, the default) or chat.update",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="drive the bare reference responder instead of routerbot (the machine's floor)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run the reference and routerbot back to back (--rounds times) and print ratios",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --compare")
    args = parser.parse_args()
    if args.compare:
        profile, spy = args.profile, args.py_spy

        async def one(reference: bool) -> Summary:
            name = "reference" if reference else "routerbot"
            if profile:
                args.profile = f"{profile}.{name}"
            if spy:
                args.py_spy = f"{spy}.{name}"
            results = await run(args, reference)
            report(args, results, reference)
            return summary(results, reference)

        pairs = asyncio.run(compare(args.rounds, one, what=f"Slack, {args.chats} concurrent /chat"))
        sys.exit(1 if any(b.failures or r.failures for b, r in pairs) else 0)
    results = asyncio.run(run(args, args.reference))
    report(args, results, args.reference)
    sys.exit(1 if results.failures else 0)


if __name__ == "__main__":
    main()
