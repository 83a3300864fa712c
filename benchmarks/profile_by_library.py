"""A profile summed by the library each function's code lives in.

    uv run python benchmarks/profile_by_library.py /tmp/slack.spy [/tmp/other.spy …] [--top 12]

Reads py-spy's collapsed stacks (``slack_load.py --py-spy PATH``, the preferred input: a
sample costs the bot nothing and SQLAlchemy's greenlet switches do not mislead it) or a
cProfile dump (``--profile PATH``, ending ``.prof`` or from ``profiled.py``). Each sample (or
cProfile's own time) is charged to the library of the innermost Python frame: a package in
site-packages, routerbot's own top-level directories, or a standard library module
(``asyncio``, ``json`` …). Under py-spy, time in C is charged to the Python frame that called
it, so uvloop's own loop shows as ``event loop (C)``; idle time (waiting in epoll) is not
sampled. Under cProfile, built-in functions are ``builtins (C calls)`` and the loop's wait is
shown apart. Shares are of the busy time.
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


STDLIB_NAMES = sys.stdlib_module_names


def spy_library(frame: str) -> str:
    """The library of one py-spy frame, ``function (path/to/file.py:line)``."""
    if frame.startswith("thread ("):
        return "(C, no Python frame)"  # a sample with nothing but the thread on its stack
    where = frame.rsplit(" (", 1)[-1].rstrip(")")
    if where.startswith("<string>"):
        return "(generated code: dataclasses)"
    if frame.startswith(("Runner.run (asyncio/runners.py", "run_until_complete (")):
        return "event loop (C)"
    path = where.rsplit(":", 1)[0]
    if path.startswith("<frozen "):
        return "stdlib:" + path.removeprefix("<frozen ").rstrip(">").split(".")[0]
    top = path.split("/", 1)[0].removesuffix(".py")
    if top in OWN - {"tests"}:
        return f"routerbot:{top}"
    if top in STDLIB_NAMES:
        return f"stdlib:{top}"
    return top


def by_library_spy(path: str) -> tuple[dict[str, float], float]:
    """Seconds by library from collapsed stacks sampled at ``rate`` Hz (counts → shares)."""
    totals: dict[str, float] = defaultdict(float)
    other_threads = 0.0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or not count.isdigit():
            continue
        leaf = frames[-1]
        samples = int(count) / SPY_RATE
        totals[spy_library(leaf)] += samples
        if not frames[0].endswith("MainThread"):
            other_threads += samples
    return dict(totals), other_threads


SPY_RATE = 250  # Hz, as load_common.Sampler records


def by_library(path: str) -> tuple[dict[str, float], float]:
    if not path.endswith(".prof") and not _is_pstats(path):
        return by_library_spy(path)
    return by_library_prof(path)


def _is_pstats(path: str) -> bool:
    with open(path, "rb") as f:
        return not f.read(7).startswith(b"thread ")


def by_library_prof(path: str) -> tuple[dict[str, float], float]:
    stats = pstats.Stats(path)
    totals: dict[str, float] = defaultdict(float)
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        totals[library(filename, function)] += tottime
    idle = totals.pop("(idle: epoll wait)", 0.0)
    return dict(totals), idle


def _cell(seconds: float, busy: float, chats: int) -> str:
    share = f"{100 * seconds / busy:.1f} %"
    return f"{seconds / chats * 1000:.2f} ms / {share}" if chats else f"{seconds:.2f} s / {share}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "profiles", nargs="+", help="cProfile dumps; several are compared side by side"
    )
    parser.add_argument("--top", type=int, default=14)
    parser.add_argument("--chats", type=int, default=0, help="also show ms per chat")
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
            _cell(t.get(name, 0.0), b, args.chats) for (t, _), b in zip(tables, busy, strict=True)
        )
        print(f"| {name} | {cells} |")
    rest = [sum(v for n, v in t.items() if n not in shown) for t, _ in tables]
    print(
        "| (the rest) | "
        + " | ".join(_cell(r, b, args.chats) for r, b in zip(rest, busy, strict=True))
        + " |"
    )
    total = [f"{b / args.chats * 1000:.2f} ms" if args.chats else f"{b:.2f} s" for b in busy]
    print("| **busy total** | " + " | ".join(total) + " |")
    print(
        "| (py-spy: other threads; cProfile: idle in epoll) | "
        + " | ".join(f"{i:.2f} s" for _, i in tables)
        + " |"
    )


if __name__ == "__main__":
    sys.exit(main())
