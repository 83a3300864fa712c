"""``routerbot run``: every front-end whose credentials are configured, in one process.

They share one runtime (database pool, provider clients). A signal stops them all; so does one
of them failing, so a half-working bot never keeps running unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable

from bot.config import Settings
from bot.loop import run_loop
from bot.runtime import build_runtime
from bot.slack_app import serve_slack, slack_configured
from bot.slack_app.server import install_stop_signals

log = logging.getLogger(__name__)

try:  # the Discord front-end is optional at import time (built separately)
    from bot.discord_app import run_discord_async
except ImportError:  # pragma: no cover - depends on what is installed
    run_discord_async = None  # type: ignore[assignment]

NOTHING_CONFIGURED = """\
routerbot run: no front-end is configured. Set one of:
  Slack (one workspace):   SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET
  Slack (installable):     SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET
  Slack Socket Mode:       SLACK_APP_TOKEN as well (then SLACK_SIGNING_SECRET is optional
                           with SLACK_BOT_TOKEN)
  Discord:                 DISCORD_TOKEN
or run `routerbot console` to use routerbot from this terminal."""


def configured_front_ends(settings: Settings) -> list[str]:
    names = []
    if slack_configured(settings):
        names.append("slack")
    if settings.discord_token is not None and run_discord_async is not None:
        names.append("discord")
    return names


def run_all(settings: Settings) -> int:
    names = configured_front_ends(settings)
    if not names:
        print(NOTHING_CONFIGURED, file=sys.stderr)
        return 2
    return run_loop(_run_all(settings, names), loop=settings.routerbot_event_loop)


async def _run_all(settings: Settings, names: list[str]) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    runtime, _warning = await build_runtime(settings)
    runtime.start_catalogue_refresh()  # one catalogue for every front-end of the process
    starters: dict[str, Callable[[], Awaitable[None]]] = {
        "slack": lambda: serve_slack(settings, runtime=runtime, stop=stop),
    }
    if run_discord_async is not None:
        discord = run_discord_async
        starters["discord"] = lambda: discord(settings, runtime)
    tasks: dict[asyncio.Future[object], str] = {
        asyncio.ensure_future(starters[name]()): name for name in names
    }
    log.info("routerbot run: %s", ", ".join(names))
    waiter: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({*tasks, waiter}, return_when=asyncio.FIRST_COMPLETED)
        status = 0
        for task in done:
            if task is waiter or task.cancelled():
                continue
            error = task.exception()
            if error is not None:
                log.error("%s front-end stopped: %s", tasks[task], error, exc_info=error)
                status = 1
            elif not stop.is_set():
                log.error("%s front-end stopped unexpectedly", tasks[task])
                status = 1
        return status
    finally:
        stop.set()  # Slack shuts down gracefully on this
        waiter.cancel()
        for task, name in tasks.items():
            if name != "slack":
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await runtime.aclose()
