"""The operator commands' arguments and entry points (``routerbot
costs|export|reconcile|audit``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bot.config import Settings
from bot.core.commands import PERIODS, Period
from bot.core.errors import UsageError, UserFacingError
from bot.ops.common import ReportError, parse_since

WORKSPACE_HELP = "platform:id (slack:T123, discord:456, console:acme) or a bare id"


def _period(text: str) -> Period:
    for period in PERIODS:
        if text.lower() == period:
            return period
    raise argparse.ArgumentTypeError(f"choose from {', '.join(PERIODS)}")


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bot.ops import models_sync

    models_sync.add_arguments(sub)
    costs = sub.add_parser("costs", help="a workspace's or channel's spend, as tables")
    costs.add_argument("--workspace", required=True, help=WORKSPACE_HELP)
    costs.add_argument("--channel", help="one channel id (default: the whole workspace)")
    costs.add_argument(
        "--period", type=_period, default="month", help="today, week, month, 30d or all (UTC)"
    )
    costs.set_defaults(handler=_costs_command)

    export = sub.add_parser("export", help="the usage ledger as CSV or JSON on stdout")
    export.add_argument("--workspace", required=True, help=WORKSPACE_HELP)
    export.add_argument("--since", help="YYYY-MM-DD (UTC) or an ISO time; default: everything")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.set_defaults(handler=_export_command)

    rec = sub.add_parser(
        "reconcile", help="check recorded costs against OpenRouter's GET /generation"
    )
    rec.add_argument("--workspace", required=True, help=WORKSPACE_HELP)
    rec.add_argument("--since", help="YYYY-MM-DD (UTC) or an ISO time; default: everything")
    rec.add_argument("--fix", action="store_true", help="take OpenRouter's cost where it differs")
    rec.set_defaults(handler=_reconcile_command)

    audit = sub.add_parser("audit", help="the audit log of admin changes as CSV or JSON")
    audit.add_argument("--workspace", required=True, help=WORKSPACE_HELP)
    audit.add_argument("--since", help="YYYY-MM-DD (UTC) or an ISO time; default: everything")
    audit.add_argument("--format", choices=("csv", "json"), default="csv")
    audit.set_defaults(handler=_audit_command)


def _fail(message: str) -> int:
    print(f"routerbot: {message}", file=sys.stderr)
    return 2


def _run(coro: Any) -> int:
    try:
        return int(asyncio.run(coro))
    except (ReportError, UsageError, UserFacingError) as exc:
        return _fail(str(exc))


def _costs_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.ops.costs import write_costs
    from bot.runtime import open_store

    async def main() -> int:
        store = await open_store(settings)
        try:
            await write_costs(
                store,
                sys.stdout,
                workspace=args.workspace,
                channel=args.channel,
                period=args.period,
            )
        finally:
            await store.close()
        return 0

    return _run(main())


def _export_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.ops.export import export_usage

    return _export(settings, args, export_usage, lambda n: f"exported {n} row(s)")


def _audit_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.ops.audit import export_audit

    return _export(
        settings, args, export_audit, lambda n: f"exported {n} audit entr{'y' if n == 1 else 'ies'}"
    )


def _export(
    settings: Settings,
    args: argparse.Namespace,
    export: Callable[..., Awaitable[int]],
    summary: Callable[[int], str],
) -> int:
    """A workspace's rows since ``--since`` on stdout in ``--format``; the count on stderr."""
    from bot.runtime import open_store

    async def main() -> int:
        since = parse_since(args.since)
        store = await open_store(settings)
        try:
            count = await export(
                store, sys.stdout, workspace=args.workspace, since=since, fmt=args.format
            )
        finally:
            await store.close()
        print(summary(count), file=sys.stderr)
        return 0

    return _run(main())


def _reconcile_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.ops.reconcile import reconcile
    from bot.runtime import build_runtime

    async def main() -> int:
        since = parse_since(args.since)
        runtime, _ = await build_runtime(settings)
        try:
            findings = await reconcile(
                runtime.service, sys.stdout, workspace=args.workspace, since=since, fix=args.fix
            )
        finally:
            await runtime.aclose()
        # Non-zero when differences remain, so a scheduled check can alert on it.
        return 1 if any(f.status == "differs" for f in findings) and not args.fix else 0

    return _run(main())
