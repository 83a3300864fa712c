"""A cProfile dump, summed by the library each function's code lives in.

    uv run python benchmarks/profile_by_library.py /tmp/slack.prof [--top 12]

``slack_load.py --profile PATH`` (and ``discord_load.py``/``console_chat.py``) write the dump.
Own time (``tottime``) is charged to the file's top-level package in site-packages, to
routerbot's own top-level directories, or to the standard library module (``asyncio``,
``json``, ``ssl`` …); built-in functions (``{method 'send' of '_socket.socket'}``) are charged
to ``builtins``, except the loop's wait (``select.epoll.poll``), which is idle time and shown
apart. Shares are of the busy time (all own time minus the wait), the way the benchmarks'
README reads them.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import sysconfig
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
OWN = {"bot", "adapters", "storage", "tests", "benchmarks"}
IDLE = ("select.epoll", "poll' of 'select", "{method 'select' of", "uv_run", "run_once")


def library(filename: str, function: str) -> str:
    """Which library a profiled function belongs to."""
    if filename == "~" or filename.startswith("<"):
        if any(mark in function for mark in IDLE[:3]):
            return "(idle: epoll wait)"
        return "builtins (C calls)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        index = parts.index("site-packages")
        top = parts[index + 1] if len(parts) > index + 1 else "?"
        return top.removesuffix(".py").split(".")[0]
    try:
        relative = path.resolve().relative_to(REPO)
    except ValueError:
        relative = None
    if relative is not None and relative.parts and relative.parts[0] in OWN:
        return f"routerbot:{relative.parts[0]}" if relative.parts[0] in OWN - {"tests"} else "tests"
    try:
        module = path.resolve().relative_to(STDLIB)
    except ValueError:
        return "other"
    return "stdlib:" + module.parts[0].removesuffix(".py")


def by_library(path: str) -> tuple[dict[str, float], float]:
    stats = pstats.Stats(path)
    totals: dict[str, float] = defaultdict(float)
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        totals[library(filename, function)] += tottime
    idle = totals.pop("(idle: epoll wait)", 0.0)
    return dict(totals), idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "profiles", nargs="+", help="cProfile dumps; several are compared side by side"
    )
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    tables = [by_library(p) for p in args.profiles]
    busy = [sum(t.values()) for t, _ in tables]
    names = sorted(
        {name for t, _ in tables for name in t},
        key=lambda n: -max(t.get(n, 0.0) / b for (t, _), b in zip(tables, busy, strict=True)),
    )
    header = " | ".join(f"{Path(p).name} s / %" for p in args.profiles)
    print(f"| library | {header} |")
    print("| --- |" + " ---: |" * len(args.profiles))
    shown = names[: args.top]
    for name in shown:
        cells = " | ".join(
            f"{t.get(name, 0.0):.2f} / {100 * t.get(name, 0.0) / b:.1f} %"
            for (t, _), b in zip(tables, busy, strict=True)
        )
        print(f"| {name} | {cells} |")
    rest = [sum(v for n, v in t.items() if n not in shown) for t, _ in tables]
    print(
        "| (the rest) | "
        + " | ".join(f"{r:.2f} / {100 * r / b:.1f} %" for r, b in zip(rest, busy, strict=True))
        + " |"
    )
    print("| **busy total** | " + " | ".join(f"{b:.2f} s" for b in busy) + " |")
    print("| (idle in epoll) | " + " | ".join(f"{i:.2f} s" for _, i in tables) + " |")


if __name__ == "__main__":
    sys.exit(main())
