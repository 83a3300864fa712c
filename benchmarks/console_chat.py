"""Console chat path: chats per second of CPU of ``routerbot console``, against a bare reference.

    uv run python benchmarks/console_chat.py [--chats 30] [--words 30] [--delay 0.02]
    uv run python benchmarks/console_chat.py --reference      # console_reference.py alone
    uv run python benchmarks/console_chat.py --compare [--rounds 2]
    uv run python benchmarks/console_chat.py --profile /tmp/console.prof

``routerbot console`` runs as a real process reading stdin from a pipe (SQLite in a temporary
directory) against a fake OpenRouter process streaming ``--words`` words ``--delay`` seconds
apart. After ``/apikey set`` and one warm-up chat, ``--chats`` lines ``/chat question N`` are
written at once; the console answers them one after another, streaming each to stdout. The
process's CPU time over those chats gives chats per second of CPU (and CPU per chat); the wall
time per chat minus the upstream's own stream time is the console's latency overhead.
``--reference`` runs ``console_reference.py``: a loop that streams the same answer to stdout
with a write and a flush per piece, and prints a footer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.load_common import (  # noqa: E402
    KEY,
    bot_command,
    cpu_seconds,
    profiling,
    start_openrouter,
    upstream_baseline,
)
from storage.crypto import generate_key  # noqa: E402

FOOTER_MARK = b" out \xc2\xb7 "


@dataclass
class Result:
    name: str
    chats: int
    cpu_seconds: float
    wall_seconds: float
    upstream_seconds: float
    peak_rss_mib: float

    @property
    def chats_per_cpu_second(self) -> float:
        return self.chats / self.cpu_seconds if self.cpu_seconds else float("inf")

    @property
    def cpu_ms_per_chat(self) -> float:
        return self.cpu_seconds / max(1, self.chats) * 1000

    @property
    def overhead_ms(self) -> float:
        return (self.wall_seconds / max(1, self.chats) - self.upstream_seconds) * 1000


async def _footers(stream: asyncio.StreamReader, wanted: int, timeout: float) -> None:
    seen = 0
    async with asyncio.timeout(timeout):
        while seen < wanted:
            line = await stream.readline()
            if not line:
                raise SystemExit("the console ended before answering every chat")
            if line.startswith("— ".encode()) and FOOTER_MARK in line:
                seen += 1


async def run(args: argparse.Namespace, reference: bool) -> Result:
    import psutil

    openrouter, or_url = await start_openrouter(args.words, args.delay)
    tmp = Path(tempfile.mkdtemp(prefix="console-chat-"))
    try:
        # One stream at a time, as the console reads them.
        upstream = statistics.median([(await upstream_baseline(or_url, 1))[0] for _ in range(3)])
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "ROUTERBOT_SECRET_KEY": generate_key(),
            "ROUTERBOT_DATA_DIR": str(tmp / "data"),
            "OPENROUTER_BASE_URL": or_url,
            "REFERENCE_API_KEY": KEY,
        }
        command = bot_command(
            [str(REPO / "benchmarks" / "console_reference.py")]
            if reference
            else ["-m", "bot", "console"],
            args.profile,
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=env, cwd=tmp, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=2**20,
        )  # fmt: skip
        assert proc.stdin is not None
        assert proc.stdout is not None
        process = psutil.Process(proc.pid)
        try:
            proc.stdin.write(f"/apikey set {KEY}\n/chat warm up\n".encode())
            await proc.stdin.drain()
            await _footers(proc.stdout, 1, 60)
            cpu_before = cpu_seconds([proc.pid])
            profiling([proc.pid], True, args.profile)
            started = time.monotonic()
            lines = "".join(f"/chat question {i}\n" for i in range(args.chats))
            proc.stdin.write(lines.encode())
            await proc.stdin.drain()
            await _footers(proc.stdout, args.chats, args.timeout)
            wall = time.monotonic() - started
            cpu = cpu_seconds([proc.pid]) - cpu_before
            profiling([proc.pid], False, args.profile)
            rss = process.memory_info().rss
        finally:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    finally:
        openrouter.terminate()
        await openrouter.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    name = "reference" if reference else "routerbot"
    return Result(name, args.chats, cpu, wall, upstream, rss / 2**20)


def report(r: Result) -> None:
    print(
        f"\nConsole chat path ({r.name}): {r.chats} chats one after another\n\n"
        f"  chats per second of CPU     {r.chats_per_cpu_second:.0f}\n"
        f"  CPU per chat                {r.cpu_ms_per_chat:.2f} ms\n"
        f"  upstream stream time        {r.upstream_seconds * 1000:.0f} ms\n"
        f"  overhead per chat           {r.overhead_ms:.1f} ms (wall time per chat - upstream)\n"
        f"  RSS at the end              {r.peak_rss_mib:.0f} MiB"
    )


async def compare(args: argparse.Namespace) -> None:
    pairs: list[tuple[Result, Result]] = []
    for index in range(args.rounds):
        first_reference = index % 2 == 0
        first = await run(args, first_reference)
        second = await run(args, not first_reference)
        for r in (first, second):
            report(r)
        pairs.append((second, first) if first_reference else (first, second))
    print(f"\nConsole: routerbot against the bare reference, {len(pairs)} interleaved round(s)\n")
    print("| round | run | chats per CPU-second | CPU per chat | overhead per chat |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for index, pair in enumerate(pairs, 1):
        for r in pair:
            print(f"| {index} | {r.name} | {r.chats_per_cpu_second:.0f} | "
                  f"{r.cpu_ms_per_chat:.2f} ms | {r.overhead_ms:.1f} ms |")  # fmt: skip
    # CPU time is counted in ticks (10 ms): a very short run may show none at all.
    ratios = [b.cpu_ms_per_chat / r.cpu_ms_per_chat if r.cpu_seconds else float("inf")
              for b, r in pairs]  # fmt: skip
    cells = " | ".join(f"{x:.2f}×" for x in ratios)
    print("\n| ratio routerbot / reference | " + " | ".join(
        f"round {i}" for i in range(1, len(pairs) + 1)) + " | median | target |")  # fmt: skip
    print("| --- |" + " ---: |" * (len(pairs) + 2))
    print(f"| CPU per chat | {cells} | {statistics.median(ratios):.2f}× | ≤ 4× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chats", type=int, default=30)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--profile", default=None, help="cProfile the console over the chats")
    parser.add_argument("--reference", action="store_true", help="run the bare reference")
    parser.add_argument("--compare", action="store_true", help="reference and routerbot, ratio")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --compare")
    args = parser.parse_args()
    if args.compare:
        asyncio.run(compare(args))
        return
    report(asyncio.run(run(args, args.reference)))


if __name__ == "__main__":
    main()
