"""Console start-up: how long until a user can type, and until the first answers arrive.

    uv run python benchmarks/console_startup.py [--runs 10]

Starts ``routerbot console`` in a pseudo-terminal (as a user's terminal would) and measures the
time until the prompt appears, then until ``/models`` has been answered; also times a whole
non-interactive run (``/help`` piped on stdin). Each run uses a fresh SQLite database, so the
first-run work (migrations, seeding) is included where it happens. Prints a table of medians
and maxima.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT = b"routerbot> "


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        ROUTERBOT_DATA_DIR=str(tmp / "data"),
        OPENROUTER_BASE_URL="http://127.0.0.1:9/api/v1",
    )
    return env


def _read_until(fd: int, needle: bytes, start: float, timeout: float = 30.0) -> float:
    buf = b""
    while needle not in buf:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no {needle!r} within {timeout} s; got {buf[-200:]!r}")
        buf += os.read(fd, 65536)
    return time.perf_counter() - start


def tty_run(routerbot: list[str], workdir: str | None = None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as fresh:
        tmp = workdir or fresh
        pid, fd = pty.fork()
        if pid == 0:  # child
            os.chdir(tmp)
            os.execvpe(routerbot[0], [*routerbot, "console"], _env(Path(tmp)))
        start = time.perf_counter()
        try:
            to_prompt = _read_until(fd, PROMPT, start)
            os.write(fd, b"/models\n")
            to_models = _read_until(fd, b"default", start)
            os.write(fd, b"/quit\n")
        finally:
            os.waitpid(pid, 0)
            os.close(fd)
    return to_prompt, to_models


def piped_run(routerbot: list[str], workdir: str | None = None) -> float:
    with tempfile.TemporaryDirectory() as fresh:
        tmp = workdir or fresh
        start = time.perf_counter()
        subprocess.run(
            [*routerbot, "console"],
            input=b"/help\n",
            capture_output=True,
            check=True,
            env=_env(Path(tmp)),
            cwd=tmp,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    routerbot = [str(Path(sys.executable).with_name("routerbot"))]
    if not Path(routerbot[0]).exists():
        routerbot = [sys.executable, "-m", "bot"]
    # Warm the OS page cache and bytecode once; users run the console more than once.
    tty_run(routerbot)
    prompts, models, piped = [], [], []
    warm_models, warm_piped = [], []
    with tempfile.TemporaryDirectory() as home:
        tty_run(routerbot, home)  # creates and seeds the database once
        for _ in range(args.runs):
            p, m = tty_run(routerbot)
            prompts.append(p)
            models.append(m)
            piped.append(piped_run(routerbot))
            warm_models.append(tty_run(routerbot, home)[1])
            warm_piped.append(piped_run(routerbot, home))
    print(f"routerbot console start-up, {args.runs} runs, {os.cpu_count()} cores")
    print(f"{'measure':<48} {'median':>8} {'max':>8}")
    for name, values in (
        ("TTY: prompt shown (can type)", prompts),
        ("TTY: /models answered, existing database", warm_models),
        ("TTY: /models answered, new database (migrate)", models),
        ("stdin: `/help` piped, existing database", warm_piped),
        ("stdin: `/help` piped, new database", piped),
    ):
        print(f"{name:<48} {statistics.median(values):>7.3f}s {max(values):>7.3f}s")


if __name__ == "__main__":
    main()
