"""Reads a spend chart PNG back: decodes it with Pillow and finds its bars by their colour.

Bars are the only pixels of :data:`bot.core.charts.BAR_COLOR`; a row just above the x axis
crosses every bar once, so counting colour runs on it counts the days with spend, and the
height of each run's column gives the bar's height.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from bot.core.charts import BAR_COLOR

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ReadChart:
    width: int
    height: int
    #: Each bar's pixel height, left to right.
    bars: list[int]


def _is_bar(pixel: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(pixel[:3], BAR_COLOR, strict=True))


def read_chart(png: bytes) -> ReadChart:
    assert png.startswith(PNG_MAGIC), "not a PNG"
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    rows = [y for y in range(height) if any(_is_bar(pixels[x, y]) for x in range(width))]
    if not rows:
        return ReadChart(width, height, [])
    scan = max(rows) - 1  # just above the x axis, inside every bar
    runs: list[tuple[int, int]] = []
    x = 0
    while x < width:
        if _is_bar(pixels[x, scan]):
            start = x
            while x < width and _is_bar(pixels[x, scan]):
                x += 1
            runs.append((start, x))
        x += 1
    bars = []
    for start, end in runs:
        middle = (start + end) // 2
        top = scan
        while top > 0 and _is_bar(pixels[middle, top - 1]):
            top -= 1
        bars.append(scan - top + 1)
    return ReadChart(width, height, bars)
