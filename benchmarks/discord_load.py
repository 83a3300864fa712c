"""Discord load: 200 concurrent ``/chat`` interactions at one ``routerbot discord`` process.

    uv run python benchmarks/discord_load.py [--chats 200] [--words 30] [--delay 0.02]
    uv run python benchmarks/discord_load.py --reference       # the bare reference responder
    uv run python benchmarks/discord_load.py --compare [--rounds 2]   # both, and the ratios
    uv run python benchmarks/discord_load.py --chats 100 --profile /tmp/discord.prof

``routerbot discord`` runs as a real process (SQLite in a temporary directory) against the fake
Discord of ``tests/fakes/discord.py`` (REST and gateway, in this process) and a fake OpenRouter
process streaming ``--words`` words ``--delay`` seconds apart. After the gateway session is
ready, an admin sets the key (``/apikey set``) and one chat warms up; then all interactions
are dispatched at once over ``--channels`` channels of one server. ``--reference`` runs
``discord_reference_responder.py`` instead: a bare gateway client that defers, streams and
edits once, with no framework and no database.

Measured as ``slack_load.py`` measures: ack latency (interaction dispatched to its callback
answered), time to final (dispatched to the edit that carries the footer), overhead over
the upstream (time to final minus the upstream's own p50 for as many direct streams),
failures, edits of one message less than 0.95 s apart, REST calls per chat, peak RSS and the
bot's CPU per chat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    profiling,
    sample_processes,
    start_openrouter,
    summarize,
    upstream_baseline,
)
from storage.crypto import generate_key  # noqa: E402
from tests.fakes.discord import FakeDiscord, FakeInteraction  # noqa: E402
from tests.fakes.discord_payloads import (  # noqa: E402
    MANAGE_GUILD,
    MEMBER_PERMISSIONS,
    FakeChannel,
    FakeGuild,
    FakeUser,
)

FOOTER_MARK = " out · "
ADMIN = FakeUser("ada", permissions=MEMBER_PERMISSIONS | MANAGE_GUILD)
MEMBER = FakeUser("bob")


@dataclass
class Results:
    upstream: list[float] = field(default_factory=list)
    interactions: list[FakeInteraction] = field(default_factory=list)
    finals: dict[int, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    violations: int = 0
    cpu_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)


def _route(method: str, path: str) -> str:
    if path.endswith("/callback"):
        return "callback"
    if "/webhooks/" in path:
        return f"{method} webhook message" if "/messages/" in path else f"{method} follow-up"
    return f"{method} {path.split('/')[1] if '/' in path else path}"


def final_times(discord: FakeDiscord, app_id: int) -> dict[str, float]:
    """Interaction token → when its answer's footer was written (the last such edit)."""
    found: dict[str, float] = {}
    for call in discord.calls:
        body: Any = call.json
        if call.status != 200 or call.method != "PATCH" or not isinstance(body, dict):
            continue
        if FOOTER_MARK in str(body.get("content") or "") and "/webhooks/" in call.path:
            token = call.path.split(f"/webhooks/{app_id}/", 1)[1].split("/", 1)[0]
            found[token] = call.at
    return found


def violations(discord: FakeDiscord, start: int, gap: float) -> int:
    edits: dict[str, list[float]] = {}
    for call in discord.calls[start:]:
        if call.method == "PATCH" and call.status == 200:
            edits.setdefault(call.path, []).append(call.at)
    return sum(1 for times in edits.values() for a, b in itertools.pairwise(times) if b - a < gap)


async def run(args: argparse.Namespace, reference: bool) -> Results:
    results = Results()
    openrouter, or_url = await start_openrouter(args.words, args.delay)
    tmp = Path(tempfile.mkdtemp(prefix="discord-load-"))
    channels = [FakeChannel(f"c{i:03d}") for i in range(args.channels)]
    guild = FakeGuild("Bench", channels=channels)
    try:
        results.upstream = await upstream_baseline(or_url, args.chats)
        async with FakeDiscord(guilds=[guild]) as discord:
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
                "ROUTERBOT_SECRET_KEY": generate_key(),
                "ROUTERBOT_DATA_DIR": str(tmp / "data"),
                "ROUTERBOT_LOG_LEVEL": "WARNING",
                "OPENROUTER_BASE_URL": or_url,
                "DISCORD_TOKEN": discord.token,
                "DISCORD_API_BASE": discord.api_base,
                "DISCORD_GATEWAY_URL": discord.gateway_url,
                "REFERENCE_API_KEY": KEY,
            }
            command = bot_command(
                [str(REPO / "benchmarks" / "discord_reference_responder.py")]
                if reference
                else ["-m", "bot", "discord"],
                args.profile,
            )
            bot = await asyncio.create_subprocess_exec(sys.executable, *command, env=env, cwd=tmp)
            stop = asyncio.Event()
            try:
                await discord.wait_ready(timeout=60)
                await discord.wait_for(
                    lambda: (
                        any(c["name"] == "chat" for c in discord.commands)
                        or any(
                            c["name"] == "chat"
                            for cs in discord.guild_commands.values()
                            for c in cs
                        )
                    ),
                    timeout=60,
                    what="the /chat command registered",
                )
                sampler = asyncio.create_task(sample_processes([bot.pid], results.usage, stop))
                if not reference:
                    setup = await discord.slash(guild, channels[0], ADMIN, "apikey set", key=KEY)
                    await discord.wait_for(lambda: setup.text(), timeout=30, what="the key set")
                warm = await discord.slash(guild, channels[0], MEMBER, "chat", prompt="warm up")
                await discord.wait_for(
                    lambda: FOOTER_MARK in warm.text(), timeout=30, what="the warm-up answer"
                )
                sampling = Sampler(args.py_spy)
                await sampling.start(bot.pid)
                cpu_before = cpu_seconds([bot.pid])
                profiling([bot.pid], True, args.profile)
                calls_before = len(discord.calls)
                results.interactions = [
                    await discord.slash(
                        guild, channels[i % len(channels)], MEMBER, "chat", prompt=f"question {i}"
                    )
                    for i in range(args.chats)
                ]
                app_id = discord.application_id

                def done() -> bool:
                    finals = final_times(discord, app_id)
                    return all(ix.token in finals for ix in results.interactions)

                with contextlib.suppress(AssertionError):
                    await discord.wait_for(done, timeout=args.timeout, what="every answer")
                results.cpu_seconds = cpu_seconds([bot.pid]) - cpu_before
                profiling([bot.pid], False, args.profile)
                await sampling.stop()
                stop.set()
                await sampler
                finals = final_times(discord, app_id)
                for index, ix in enumerate(results.interactions):
                    if ix.response_type != 5:
                        results.failures.append(f"chat {index}: callback {ix.response_type}")
                    elif ix.token not in finals:
                        results.failures.append(f"chat {index}: no final message: {ix.text()!r}")
                    else:
                        results.finals[index] = finals[ix.token] - ix.dispatched_at
                results.violations = violations(discord, calls_before, 0.95)
                for call in discord.calls[calls_before:]:
                    route = _route(call.method, call.path)
                    results.calls[route] = results.calls.get(route, 0) + 1
            finally:
                if bot.returncode is None:
                    bot.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(bot.wait(), 30)
                if bot.returncode is None:
                    bot.kill()
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
        acks=[ix.responded_after for ix in r.interactions if ix.responded_after is not None],
        finals=list(r.finals.values()),
        failures=len(r.failures),
        violations=r.violations,
        peak_rss=r.usage.peak_rss,
        cpu_seconds=r.cpu_seconds,
        chats=len(r.interactions),
    )


def report(args: argparse.Namespace, r: Results, reference: bool) -> None:
    s = summary(r, reference)
    target = "the reference responder" if reference else "one `routerbot discord` (SQLite)"
    print(f"\nDiscord load: {s.chats} concurrent /chat at {target}\n")
    n = max(1, s.chats)
    rows = [
        ("upstream stream time p50", f"{s.upstream_p50_ms:.0f} ms"),
        ("ack latency p50 / p99", f"{s.ack_p50_ms:.1f} / {s.ack_p99_ms:.1f} ms"),
        ("time to final message p50", f"{s.final_p50_ms:.0f} ms"),
        ("overhead over upstream p50 / p99", f"{s.overhead_p50_ms:.0f} / {s.overhead_p99_ms:.0f} ms"),
        ("failures", f"{s.failures}"),
        ("edit rate violations", f"{s.violations}"),
        ("REST calls per chat", ", ".join(f"{k} {v / n:.1f}" for k, v in r.calls.items())),
        ("peak RSS of the bot process", f"{s.peak_rss_mib:.0f} MiB"),
        ("CPU time of the bot process per chat", f"{s.cpu_ms_per_chat:.1f} ms"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for failure in r.failures[:10]:
        print(f"  ! {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--profile", default=None, help="cProfile the bot during the burst")
    parser.add_argument("--py-spy", default=None, help="py-spy the bot during the burst, to PATH")
    parser.add_argument("--reference", action="store_true", help="drive the bare reference")
    parser.add_argument("--compare", action="store_true", help="reference and routerbot, ratios")
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

        what = f"Discord, {args.chats} concurrent /chat"
        pairs = asyncio.run(compare(args.rounds, one, what=what))
        sys.exit(1 if any(b.failures or r.failures for b, r in pairs) else 0)
    results = asyncio.run(run(args, args.reference))
    report(args, results, args.reference)
    sys.exit(1 if results.failures else 0)


if __name__ == "__main__":
    main()
