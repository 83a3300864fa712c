"""The Discord front-end: ``routerbot discord``, or one part of ``routerbot run``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import TYPE_CHECKING

import discord

from bot.config import Settings
from bot.core.errors import ConfigurationError
from bot.discord_app.client import RouterbotClient, build_client
from bot.loop import run_loop

if TYPE_CHECKING:
    from bot.runtime import Runtime

__all__ = ["RouterbotClient", "build_client", "run_discord", "run_discord_async"]

log = logging.getLogger(__name__)


async def run_discord_async(settings: Settings, runtime: Runtime) -> None:
    """Run the Discord client over ``runtime`` until it is closed or cancelled.

    Without the Message Content intent enabled for the application, Discord refuses the
    connection; the client then reconnects without it (replies must mention the bot).
    """
    if settings.discord_token is None:
        raise ConfigurationError("DISCORD_TOKEN is not set; see the README's Discord section.")
    token = settings.discord_token.get_secret_value()
    service, dispatcher = runtime.service, runtime.dispatcher
    runtime.start()  # lease renewals, and settling what dead processes left
    for message_content in (True, False):
        client = build_client(
            settings, service, dispatcher, message_content=message_content, runtime=runtime
        )
        try:
            async with client:
                await client.start(token)
            return
        except discord.PrivilegedIntentsRequired:
            log.warning(
                "the Message Content intent is not enabled for this application; replies to "
                "answers must mention the bot to be read (see README)"
            )
        except discord.LoginFailure:
            raise ConfigurationError("Discord rejected DISCORD_TOKEN; check the token.") from None
    raise ConfigurationError("Discord refused the gateway connection.")


def run_discord(settings: Settings) -> int:
    """``routerbot discord``: build the core, run the client, close cleanly on SIGTERM."""
    if settings.discord_token is None:
        print(
            "routerbot: DISCORD_TOKEN is not set; see the README's Discord section.",
            file=sys.stderr,
        )
        return 2
    return run_loop(_main(settings), loop=settings.routerbot_event_loop)


async def _main(settings: Settings) -> int:
    from bot.runtime import build_runtime

    runtime, warning = await build_runtime(settings)
    if warning:
        log.warning(warning)
    runtime.start_catalogue_refresh()  # this process's model catalogue, kept fresh
    task = asyncio.create_task(run_discord_async(settings, runtime))
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped by SIGTERM")
    finally:
        await runtime.aclose()
    return 0
