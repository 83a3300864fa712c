"""The serving commands' event loop: uvloop by default, asyncio's when asked."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.loop import run_loop

uvloop = pytest.importorskip("uvloop")  # not installed on Windows


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_by_default() -> None:
    assert Settings(_env_file=None).routerbot_event_loop == "uvloop"  # type: ignore[call-arg]
    assert issubclass(run_loop(_loop_type()), uvloop.Loop)


def test_the_standard_loop_when_asked() -> None:
    assert not issubclass(run_loop(_loop_type(), loop="asyncio"), uvloop.Loop)
