"""Reporting periods: calendar-based in UTC, each with a label that says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.commands import Period


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    since: datetime | None
    until: datetime | None
    label: str


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def period_window(period: Period, now: datetime) -> PeriodWindow:
    """Bounds for ``period`` at ``now`` (naive UTC); ``until`` is exclusive."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "today":
        return PeriodWindow(midnight, None, f"today ({midnight:%Y-%m-%d} UTC)")
    if period == "week":
        monday = midnight - timedelta(days=midnight.weekday())
        return PeriodWindow(monday, None, f"this week (since Monday {monday:%Y-%m-%d}, UTC)")
    if period == "month":
        start = month_start(now)
        return PeriodWindow(start, None, f"{start:%B %Y} (calendar month, UTC)")
    if period == "30d":
        since = now - timedelta(days=30)
        return PeriodWindow(since, None, f"the last 30 days (since {since:%Y-%m-%d %H:%M} UTC)")
    return PeriodWindow(None, None, "all time")
