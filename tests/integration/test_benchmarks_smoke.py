"""The load benchmarks still run: each ``--compare`` for a few chats, in seconds.

Not a measurement (the figures of a three-chat burst mean nothing): a check that the scripts,
their reference responders, the profiler hooks and the by-library summary keep working as
the code under them changes. The benchmarks themselves stay out of the test run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["--words", "3", "--delay", "0.001", "--rounds", "1", "--compare"]


def bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_slack_load_compares_and_profiles(tmp_path: Path) -> None:
    profile = tmp_path / "slack.prof"
    out = bench(
        "slack_load.py", "--chats", "3", "--channels", "2", *TINY, "--profile", str(profile)
    )
    assert "| CPU per chat |" in out and "| overhead p50 |" in out
    assert "0 failures, 0 rate-limit violations" in out
    summary = bench("profile_by_library.py", f"{profile}.routerbot", f"{profile}.reference")
    assert "| **busy total** |" in summary


def test_discord_load_compares() -> None:
    out = bench("discord_load.py", "--chats", "3", "--channels", "2", *TINY)
    assert "| CPU per chat |" in out
    assert "0 failures, 0 rate-limit violations" in out


@pytest.mark.parametrize("script", ["console_chat.py"])
def test_console_chat_compares(script: str) -> None:
    out = bench(script, "--chats", "3", *TINY)
    assert "| CPU per chat |" in out
