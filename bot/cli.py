"""``routerbot …``: the command-line entry point. Front-ends are imported only when asked for,
so the console starts without loading slack_bolt or discord."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import sys
from collections.abc import Sequence

from bot.config import Settings, load_settings
from bot.core.errors import ConfigurationError
from bot.core.pricing import ModelSettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="routerbot",
        description="Governed, cost-visible LLM access from Slack, Discord and the terminal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    console = sub.add_parser("console", help="chat and manage a workspace from the terminal")
    console.add_argument("--workspace", default="default", help="console workspace name")
    console.add_argument("--user", default=None, help="who types (default: the login name)")
    console.add_argument("--channel", default="console", help="where (default: console)")
    console.add_argument(
        "--member", action="store_true", help="type as a member, not as the workspace's admin"
    )
    sub.add_parser("slack", help="run the Slack front-end (HTTP on $PORT, or Socket Mode)")
    sub.add_parser("discord", help="run the Discord front-end")
    sub.add_parser("run", help="run every front-end whose credentials are configured")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations")
    sub.add_parser("secret-key", help="print a new Fernet key for ROUTERBOT_SECRET_KEY")
    sub.add_parser(
        "rotate-keys",
        help="re-encrypt stored API keys with the first ROUTERBOT_SECRET_KEY",
    )
    _add_report_commands(sub)
    return parser


def _add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Operator commands: reports (costs, export, reconcile) and ``models sync``."""
    from bot.ops import cli

    cli.add_arguments(sub)


def _fail(message: str) -> int:
    print(f"routerbot: {message}", file=sys.stderr)
    return 2


async def _console(settings: Settings, args: argparse.Namespace) -> int:
    from bot.console import run_console
    from bot.core.pricing import ModelSettings
    from bot.core.text import clean_text

    # Validated before the prompt appears: a broken file stops start-up naming the field.
    model_settings = ModelSettings.load(settings.model_settings_path)
    # Both come from the operating system, which hands undecodable bytes over as surrogates.
    await run_console(
        settings,
        model_settings,
        workspace=clean_text(getattr(args, "workspace", "default")),
        user=clean_text(getattr(args, "user", None) or getpass.getuser()),
        channel=clean_text(getattr(args, "channel", "console")),
        member=getattr(args, "member", False),
    )
    return 0


async def _db_upgrade(settings: Settings) -> int:
    from bot.runtime import upgrade_database

    await upgrade_database(settings)
    print("database is at the latest schema")
    return 0


async def _rotate(settings: Settings) -> int:
    from bot.runtime import rotate_stored_keys

    count = await rotate_stored_keys(settings)
    print(f"re-encrypted {count} stored key(s) with the first ROUTERBOT_SECRET_KEY")
    return 0


#: Collect the youngest generation every 10,000 net allocations (Python's default is 700),
#: the older ones 20 times less often each (default 10).
SERVER_GC_THRESHOLDS = (10_000, 20, 20)


def _tune_gc_for_serving() -> None:
    """Keep garbage-collection pauses off the event loop's critical path.

    With a thousand chats in flight a full collection walks every live object and paused the
    loop for 100-230 ms, often enough that acks' p99 went past 50 ms
    (``benchmarks/load_chats.py``). The objects loaded at start-up never die, so they are
    frozen out of the collector's sight; and collections run less often, so the heap's growth
    under load triggers a handful of full collections instead of dozens. Cyclic garbage
    (a few thousand objects a second here) still goes at every young collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)


def _front_end(name: str, settings: Settings) -> int:
    if name == "slack":
        from bot.slack_app import run_slack

        _tune_gc_for_serving()
        return run_slack(settings)
    if name == "discord":
        from bot.discord_app import run_discord

        _tune_gc_for_serving()
        return run_discord(settings)
    from bot.serve import run_all

    _tune_gc_for_serving()
    return run_all(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "console"
    try:
        settings = load_settings()
    except Exception as exc:  # pydantic's ValidationError names the variable
        return _fail(f"invalid configuration: {exc}")
    from bot.logging import configure_logging, redact

    configure_logging("WARNING" if command == "console" else settings.routerbot_log_level)
    try:
        if command == "console":
            return asyncio.run(_console(settings, args))
        if command == "db":
            return asyncio.run(_db_upgrade(settings))
        if command == "secret-key":
            from bot.runtime import new_secret_key

            print(new_secret_key())
            return 0
        if command == "rotate-keys":
            return asyncio.run(_rotate(settings))
        if command in ("slack", "discord", "run"):
            return _front_end(command, settings)
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(settings, args))
    except (ModelSettingsError, ConfigurationError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # One line for the operator (the database unreachable, a port taken); the traceback
        # goes to the log at debug level only, redacted like every record.
        logging.getLogger("routerbot").debug("start-up failed", exc_info=True)
        return _fail(f"{command} stopped: {type(exc).__name__}: {redact(str(exc))}")
    return _fail(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main())
