"""What the load benchmarks share: the fake upstream, process sampling, summaries, and the
side-by-side comparison with a bare reference responder (``--compare``).

A comparison runs the reference and routerbot back to back, alternating which goes first,
for ``--rounds`` rounds, and prints each run and the ratios routerbot / reference of each
round and their median: on a shared machine only figures measured in the same sitting can
be compared.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-or-v1-bench-key-000000000001"
MODEL = "anthropic/claude-3.5-sonnet"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_openrouter(words: int, delay: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake OpenRouter as its own process; returns it and its base URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.openrouter", "--words", str(words),
        "--delay", str(delay), "--key", KEY, cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc, line.decode().strip()


async def upstream_baseline(base_url: str, n: int) -> list[float]:
    """The upstream's own time: n concurrent streams straight to the fake, to ``[DONE]``."""
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "baseline"}]}

    async def one(http: aiohttp.ClientSession) -> float:
        started = time.perf_counter()
        async with http.post(
            base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ) as resp:
            async for line in resp.content:
                if line.startswith(b"data: [DONE]"):
                    break
        return time.perf_counter() - started

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        return list(await asyncio.gather(*(one(http) for _ in range(n))))


def bot_command(args: list[str], profile: str | None) -> list[str]:
    """``args`` (``-m bot slack``, a script) run by the benchmark's Python, under
    ``profiled.py`` when a profile is asked for (see :func:`profiling`)."""
    if profile:
        return [str(REPO / "benchmarks" / "profiled.py"), profile, *args]
    return args


def profiling(pids: list[int], on: bool, profile: str | None) -> None:
    """Start (SIGUSR1) or stop and dump (SIGUSR2) the profile of the burst."""
    if profile:
        for pid in pids:
            os.kill(pid, signal.SIGUSR1 if on else signal.SIGUSR2)


class Sampler:
    """py-spy sampling the bot (every thread, idle samples left out) through the burst, written
    as collapsed stacks for ``profile_by_library.py``: unlike cProfile it adds no cost per call
    and is not misled by SQLAlchemy's greenlet switches, and it sees the database thread.
    Time in C (uvloop's loop, a parser) counts for the Python frame that called it.
    ``py-spy`` is found on PATH or in ``$PY_SPY`` (``uv tool install py-spy``)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, pid: int) -> None:
        if not self.path:
            return
        exe = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"
        self.proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
            "--threads", "--gil", "--nonblocking", "--output", self.path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.0)  # attached and sampling

    async def stop(self) -> None:
        if self.proc is not None:
            if self.proc.returncode is None:
                self.proc.send_signal(signal.SIGINT)
            await self.proc.wait()
            self.proc = None


@dataclass
class Usage:
    """The bot processes' peak RSS and CPU percentages, sampled through a burst."""

    peak_rss: int = 0
    cpu: list[float] = field(default_factory=list)


async def sample_processes(pids: list[int], usage: Usage, stop: asyncio.Event) -> None:
    """Peak RSS of the largest bot process, and the bots' CPU together (% of one CPU)."""
    processes = [psutil.Process(pid) for pid in pids]
    for process in processes:
        process.cpu_percent()
    while not stop.is_set():
        try:
            usage.peak_rss = max(usage.peak_rss, *(p.memory_info().rss for p in processes))
            usage.cpu.append(sum(p.cpu_percent() for p in processes))
        except psutil.Error:
            return
        await asyncio.sleep(0.05)


def cpu_seconds(pids: list[int]) -> float:
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


@dataclass
class Summary:
    """One run's figures, as the comparison reads them."""

    name: str
    chats: int
    upstream_p50_ms: float
    ack_p50_ms: float
    ack_p99_ms: float
    final_p50_ms: float
    overhead_p50_ms: float
    overhead_p99_ms: float
    failures: int
    violations: int
    peak_rss_mib: float
    cpu_ms_per_chat: float


def summarize(
    name: str,
    *,
    upstream: list[float],
    acks: list[float],
    finals: list[float],
    failures: int,
    violations: int,
    peak_rss: int,
    cpu_seconds: float,
    chats: int,
) -> Summary:
    """Seconds in, milliseconds out; overhead is time to final minus the upstream's p50."""
    upstream_p50 = statistics.median(upstream) * 1000 if upstream else 0.0
    finals_ms = [f * 1000 for f in finals]
    overhead = [f - upstream_p50 for f in finals_ms]
    acks_ms = [a * 1000 for a in acks]
    return Summary(
        name=name,
        chats=chats,
        upstream_p50_ms=upstream_p50,
        ack_p50_ms=pct(acks_ms, 50),
        ack_p99_ms=pct(acks_ms, 99),
        final_p50_ms=pct(finals_ms, 50),
        overhead_p50_ms=pct(overhead, 50),
        overhead_p99_ms=pct(overhead, 99),
        failures=failures,
        violations=violations,
        peak_rss_mib=peak_rss / 2**20,
        cpu_ms_per_chat=cpu_seconds / max(1, chats) * 1000,
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


async def compare(
    rounds: int,
    run: Callable[[bool], Awaitable[Summary]],
    *,
    what: str,
) -> list[tuple[Summary, Summary]]:
    """``rounds`` rounds of (reference, routerbot), the order alternating; prints the table."""
    pairs: list[tuple[Summary, Summary]] = []
    for index in range(rounds):
        first_reference = index % 2 == 0
        first = await run(first_reference)
        second = await run(not first_reference)
        bot, ref = (second, first) if first_reference else (first, second)
        pairs.append((bot, ref))
    print_comparison(pairs, what=what)
    return pairs


def print_comparison(pairs: list[tuple[Summary, Summary]], *, what: str) -> None:
    print(f"\n{what}: routerbot against the bare reference, {len(pairs)} interleaved round(s)\n")
    print("| round | run | upstream p50 | ack p50 / p99 | final p50 | overhead p50 / p99 "
          "| failures | violations | peak RSS | CPU / chat |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for index, pair in enumerate(pairs, 1):
        for s in pair:
            print(
                f"| {index} | {s.name} | {s.upstream_p50_ms:.0f} ms | {s.ack_p50_ms:.1f} / "
                f"{s.ack_p99_ms:.1f} ms | {s.final_p50_ms:.0f} ms | {s.overhead_p50_ms:.0f} / "
                f"{s.overhead_p99_ms:.0f} ms | {s.failures} | {s.violations} | "
                f"{s.peak_rss_mib:.0f} MiB | {s.cpu_ms_per_chat:.2f} ms |"
            )
    cpu = [_ratio(b.cpu_ms_per_chat, r.cpu_ms_per_chat) for b, r in pairs]
    overhead = [_ratio(b.overhead_p50_ms, r.overhead_p50_ms) for b, r in pairs]
    ack = [b.ack_p99_ms - r.ack_p99_ms for b, r in pairs]
    print("\n| ratio routerbot / reference | " + " | ".join(f"round {i}" for i in
          range(1, len(pairs) + 1)) + " | median | target |")  # fmt: skip
    print("| --- |" + " ---: |" * (len(pairs) + 2))
    for label, values, fmt, target in (
        ("CPU per chat", cpu, "{:.2f}×", "≤ 4×"),
        ("overhead p50", overhead, "{:.2f}×", "≤ 4×"),
        ("ack p99 − reference's", ack, "{:+.1f} ms", "≤ +10 ms"),
    ):
        cells = " | ".join(fmt.format(v) for v in values)
        print(f"| {label} | {cells} | {fmt.format(statistics.median(values))} | {target} |")
    failures = sum(b.failures for b, _ in pairs)
    violations = sum(b.violations for b, _ in pairs)
    print(f"\nrouterbot: {failures} failures, {violations} rate-limit violations in all rounds")
