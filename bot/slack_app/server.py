"""``routerbot slack``: serve the Slack front-end until SIGTERM or SIGINT.

HTTP mode listens on ``$PORT`` (events, health, OAuth install). Socket Mode connects out with
``SLACK_APP_TOKEN`` and still serves ``/healthz`` (and the install pages) on ``$PORT``, so a
platform's health check and the OAuth redirect work the same way in both modes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.core.errors import ConfigurationError
from bot.loop import run_loop
from bot.runtime import Runtime, build_runtime
from bot.slack_app.app import SlackFrontend, slack_mode
from bot.slack_app.errors import error_code

log = logging.getLogger(__name__)


async def serve_slack(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    host: str = "0.0.0.0",  # noqa: S104 - a server behind the platform's router
    port: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[SlackFrontend, int], None] | None = None,
    refresh_catalogue: bool = False,
) -> None:
    """Run until ``stop`` is set. Builds (and closes) its own runtime unless given one.

    ``refresh_catalogue``: this is the process's front-end, so it keeps the model catalogue
    fresh (at start, then every 12 hours); an embedder that owns the runtime decides itself.
    """
    slack_mode(settings)  # a configuration error before any database work
    own_runtime = runtime is None
    if runtime is None:
        runtime, _warning = await build_runtime(settings)
    if refresh_catalogue:
        runtime.start_catalogue_refresh()
    try:
        frontend = await SlackFrontend.create(runtime)
        runner = web.AppRunner(frontend.web_app(), access_log=None)
        socket_handler = None
        try:
            await runner.setup()
            site = web.TCPSite(runner, host, settings.port if port is None else port)
            await site.start()
            bound = runner.addresses[0][1] if runner.addresses else 0
            frontend.start()
            runtime.start()  # lease renewals, and settling what dead processes left
            if frontend.mode.socket:
                from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

                assert settings.slack_app_token is not None
                app_token = settings.slack_app_token.get_secret_value()
                url = await _open_connection(frontend, app_token)
                socket_handler = AsyncSocketModeHandler(
                    frontend.app, app_token, logger=_socket_logger()
                )
                # Connect with the URL just issued: apps.connections.open is rate-limited
                # (Tier 1), so start-up asks for one, not two.
                socket_handler.client.wss_uri = url
                await socket_handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("routerbot slack (%s) listening on port %d", frontend.mode.label, bound)
            if on_ready is not None:
                on_ready(frontend, bound)
            await (stop or asyncio.Event()).wait()
        finally:
            if socket_handler is not None:
                await socket_handler.close_async()  # type: ignore[no-untyped-call]
            await runner.shutdown()
            await frontend.aclose()
            await runner.cleanup()
    finally:
        if own_runtime:
            await runtime.aclose()


async def _open_connection(frontend: SlackFrontend, app_token: str) -> str:
    """A Socket Mode URL; start-up fails with a sentence, not a reconnect loop, when the app
    token is wrong."""
    try:
        response = await frontend.app.client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        raise ConfigurationError(
            f"Slack rejected SLACK_APP_TOKEN ({error_code(exc)}); create an app-level "
            "token with the connections:write scope (Basic Information > App-Level Tokens)."
        ) from None
    return str(response["url"])


def _socket_logger() -> logging.Logger:
    # slack_sdk's Socket Mode client logs every frame it receives at DEBUG, envelope payloads
    # included (prompts, `/apikey set <key>`), on the logger it is given; bolt's default is the
    # app's logger, which follows the root level. Like the Web API client's logger, keep it at
    # INFO unless it is configured explicitly.
    logger = logging.getLogger("slack_sdk.socket_mode.routerbot")
    if logger.level == logging.NOTSET:
        logger.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.INFO))
    return logger


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def run_slack(settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await serve_slack(settings, stop=stop, refresh_catalogue=True)

    run_loop(main(), loop=settings.routerbot_event_loop)
    return 0
