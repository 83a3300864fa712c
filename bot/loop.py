"""Runs a serving front-end's event loop: uvloop where it is installed, else asyncio's own.

The serving commands (``routerbot slack|discord|run``) spend most of their CPU in the event
loop's socket and callback machinery; uvloop does that work in C (``benchmarks/slack_load.py``
measured the gain; see benchmarks/README.md). ``ROUTERBOT_EVENT_LOOP=asyncio`` keeps the
standard loop. The console keeps the standard loop: it starts faster without the import and
serves one person.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T], *, loop: Literal["uvloop", "asyncio"] = "uvloop") -> T:
    """``asyncio.run(main)`` on the loop asked for (asyncio's when uvloop is missing)."""
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # not installed (e.g. Windows): the standard loop serves as well
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main)
    return asyncio.run(main)
