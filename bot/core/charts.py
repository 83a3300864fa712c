"""Charts of spend per day, from a plain daily series: a PNG and a compact text chart.

Platform-neutral: Slack uploads the PNG, Discord attaches it, the console prints the text.
matplotlib is imported only when a PNG is drawn (the console starts without it), through its
object API (no pyplot, whose global state is not thread-safe). Drawing is CPU work of tens of
milliseconds: from the event loop call :func:`draw_png`, which runs in a thread.

The PNG is sized for Slack's inline preview (about 360 px wide): large type, few ticks, one
bar colour (:data:`BAR_COLOR`) so a reader, or a test, can tell bars from everything else.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from bot.core.format import format_usd
from bot.core.pricing import nano_to_usd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BAR_COLOR",
    "SpendChart",
    "draw_png",
    "render_png",
    "spend_chart",
    "text_chart",
]

#: The bars' one colour (RGB), unused anywhere else in the image.
BAR_COLOR = (47, 111, 223)
#: Inches and dots per inch: 960 x 510 px, read at about 40 % in Slack's preview.
FIGURE_SIZE = (6.4, 3.4)
DPI = 150
#: The text chart lists days one per line up to this many, then draws a sparkline.
TEXT_DAYS = 31
#: The shortest bar drawn for a day with spend, as a fraction of the tallest.
MIN_BAR = 0.015
#: Periods shorter than this many days are drawn as wide as this many (narrower bars).
MIN_SLOTS = 7
TEXT_WIDTH = 24
_SPARKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class SpendChart:
    """Spend per UTC day over a period: every day of it, days without spend as 0."""

    #: What was spent, e.g. "Spend per day in this channel".
    title: str
    #: The period as the text reply names it, e.g. "March 2026 (calendar month, UTC)".
    period: str
    #: ``(day, nano-USD)`` for each consecutive day.
    days: tuple[tuple[date, int], ...]
    currency: str = "USD"

    @property
    def total_nano(self) -> int:
        return sum(nano for _, nano in self.days)

    @property
    def spend_days(self) -> int:
        return sum(1 for _, nano in self.days if nano > 0)

    @property
    def filename(self) -> str:
        first, last = self.days[0][0], self.days[-1][0]
        return f"spend-{first:%Y%m%d}-{last:%Y%m%d}.png"

    @property
    def alt_text(self) -> str:
        """What the image shows, for screen readers and previews that cannot show it."""
        peak_day, peak = max(self.days, key=lambda d: d[1])
        return (
            f"{self.title}, {self.period}: {self._usd(self.total_nano)} over "
            f"{len(self.days)} day(s), {self.spend_days} with spend; highest "
            f"{self._usd(peak)} on {peak_day:%Y-%m-%d}."
        )

    @staticmethod
    def _usd(nano: int) -> str:
        return format_usd(nano_to_usd(nano))


def spend_chart(
    daily: Sequence[tuple[date, int]],
    *,
    first_day: date | None,
    last_day: date,
    title: str,
    period: str,
) -> SpendChart | None:
    """The chart of ``daily`` (days with rows, in any order) from ``first_day`` (None: the
    first day with a row) to ``last_day``, zeros filled in; None when nothing was spent."""
    spent = {day: nano for day, nano in daily if nano}
    if not spent:
        return None
    start = first_day or min(spent)
    end = max(last_day, max(spent))
    days = tuple(
        (start + timedelta(days=i), spent.get(start + timedelta(days=i), 0))
        for i in range((end - start).days + 1)
    )
    return SpendChart(title=title, period=period, days=days)


# -- PNG --------------------------------------------------------------------------------------


async def draw_png(chart: SpendChart) -> bytes:
    """:func:`render_png` in a worker thread, off the event loop."""
    return await asyncio.to_thread(render_png, chart)


def render_png(chart: SpendChart) -> bytes:
    """The chart as PNG bytes (blocking: CPU work and the first import of matplotlib)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    values = [float(nano_to_usd(nano)) for _, nano in chart.days]
    top = max(values)
    # A day with spend always shows a bar, however small next to the busiest day.
    shown = [max(v, top * MIN_BAR) if v > 0 else 0.0 for v in values]
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.14, 0.13, 0.81, 0.67))
    axes.bar(
        range(len(shown)),
        shown,
        width=0.75,
        color=tuple(c / 255 for c in BAR_COLOR),
        linewidth=0,
        zorder=2,
    )
    _style(axes)
    axes.set_ylim(0, top * 1.12)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=2))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _money_tick(v, top)))
    ticks = _tick_positions(len(values))
    days = [chart.days[i][0] for i in ticks]
    axes.set_xticks(ticks, [_day_label(day, i == 0, days) for i, day in enumerate(days)])
    # A short period keeps its bars bar-shaped: at least MIN_SLOTS slots, centred.
    slots = max(len(values), MIN_SLOTS)
    middle = (len(values) - 1) / 2
    axes.set_xlim(middle - slots / 2 + 0.1, middle + slots / 2 - 0.1)
    total = SpendChart._usd(chart.total_nano)
    figure.text(0.02, 0.93, f"{chart.title}: {total}", fontsize=13, weight="bold")
    subtitle = f"{chart.period} · {chart.currency} per UTC day"
    figure.text(0.02, 0.855, subtitle, fontsize=10.5, color="#555555")
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def _style(axes: Axes) -> None:
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color("#888888")
    axes.tick_params(axis="both", labelsize=10.5, colors="#333333", length=0)
    axes.tick_params(axis="x", pad=6)
    axes.grid(axis="y", color="#e3e3e3", linewidth=0.8, zorder=0)


def _tick_positions(count: int, most: int = 7) -> list[int]:
    """At most ``most`` evenly spaced day labels, always the first and the last day."""
    if count <= most:
        return list(range(count))
    step = -(-(count - 1) // (most - 1))
    ticks = list(range(0, count, step))
    if count - 1 - ticks[-1] < step / 2:
        ticks[-1] = count - 1
    else:
        ticks.append(count - 1)
    return ticks


def _day_label(day: date, first: bool, shown: list[date]) -> str:
    """``Mar 5``; with the year under it on the first label and where a new year begins,
    when the labels span more than one year."""
    label = f"{day:%b} {day.day}"
    years = {d.year for d in shown}
    if len(years) > 1 and (first or _new_year(day, shown)):
        return f"{label}\n{day.year}"
    return label


def _new_year(day: date, shown: list[date]) -> bool:
    index = shown.index(day)
    return index > 0 and shown[index - 1].year != day.year


def _money_tick(value: float, top: float) -> str:
    if value == 0:
        return "$0"
    if top >= 10:
        return f"${value:,.0f}"
    digits = f"{value:,.6f}".rstrip("0")
    whole, _, cents = digits.partition(".")
    return f"${whole}.{cents:0<2}"


# -- text -------------------------------------------------------------------------------------


def text_chart(chart: SpendChart, width: int = TEXT_WIDTH) -> str:
    """A compact chart for a terminal: a bar per day, or a sparkline for long periods."""
    total = SpendChart._usd(chart.total_nano)
    head = f"{chart.title}, {chart.period} ({chart.currency} per UTC day, total {total}):"
    peak = max(nano for _, nano in chart.days)
    if len(chart.days) > TEXT_DAYS:
        line = "".join(_spark(nano, peak) for _, nano in chart.days)
        first, last = chart.days[0][0], chart.days[-1][0]
        rows = [line[i : i + 60] for i in range(0, len(line), 60)]
        foot = f"{first:%Y-%m-%d} … {last:%Y-%m-%d}, highest {SpendChart._usd(peak)}"
        return "\n".join([head, *rows, foot])
    lines = [head]
    for day, nano in chart.days:
        cells = round(width * nano / peak) if nano else 0
        bar = "█" * max(cells, 1 if nano else 0)
        amount = SpendChart._usd(nano) if nano else ""
        lines.append(f"{day:%m-%d} {bar:<{width}} {amount}".rstrip())
    return "\n".join(lines)


def _spark(nano: int, peak: int) -> str:
    if not nano:
        return " "
    return _SPARKS[min(len(_SPARKS) - 1, nano * len(_SPARKS) // (peak + 1))]
