"""Run a command under cProfile, profiling only between SIGUSR1 and SIGUSR2.

    python benchmarks/profiled.py OUT.prof -m bot slack
    python benchmarks/profiled.py OUT.prof path/to/script.py

The load benchmarks start their bot through this with ``--profile OUT.prof`` and send SIGUSR1
just before the burst and SIGUSR2 once it is over, so the dump holds the burst alone, not the
imports, start-up and warm-up (which would otherwise be a good part of it). Only the main
thread (the event loop) is profiled.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys

profile = cProfile.Profile()


def start(_signum: int, _frame: object) -> None:
    profile.enable()


def stop(_signum: int, _frame: object) -> None:
    profile.disable()
    profile.dump_stats(OUT)


if __name__ == "__main__":
    OUT = sys.argv[1]
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    rest = sys.argv[2:]
    if rest[0] == "-m":
        sys.argv = [rest[1], *rest[2:]]
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = rest
        runpy.run_path(rest[0], run_name="__main__")
