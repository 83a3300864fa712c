"""Render the README's pictures of the Slack AI surface: a /costs chart and the Home tab.

    python3 -m uv run python benchmarks/render_readme_images.py [--out benchmarks/images]

The chart is routerbot's own PNG (``bot.core.charts.render_png``) for a sample month. The Home
tab is routerbot's own Block Kit (``bot.slack_app.home.home_view``) for a sample dashboard,
turned into HTML that looks roughly like Slack (header, section, context, button, image blocks;
mrkdwn bold, italics, code, mentions) and photographed with headless Chromium
(``apt-get install chromium``). The figures are made up; the layout and wording are the app's.
"""

from __future__ import annotations

import argparse
import base64
import html
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.base import KeyInfo, ModelPricing  # noqa: E402
from bot.core.allowlist import ModelEntry  # noqa: E402
from bot.core.charts import SpendChart, render_png, spend_chart  # noqa: E402
from bot.core.dashboard import AdminDashboard, Dashboard, SpendLine  # noqa: E402
from bot.core.keys import KeyStatus  # noqa: E402
from bot.core.pricing import usd_to_nano  # noqa: E402
from bot.core.spend.texts import BudgetState  # noqa: E402
from bot.slack_app.home import home_view  # noqa: E402

NOW = datetime(2026, 3, 20, 15, 30)
MONTH = datetime(2026, 3, 1)
CHART_FILE = "F0CHART"
NAMES = {
    "U1": "maria",
    "U2": "kenji",
    "U3": "ada",
    "U4": "tom",
    "C1": "research",
    "C2": "support",
    "C3": "design",
    "C4": "eng-platform",
}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def nano(usd: str) -> int:
    return usd_to_nano(Decimal(usd))


def sample_chart() -> SpendChart:
    # A working month: busier on weekdays, quiet at weekends, one big day of batch work.
    daily = []
    for day in range(1, 21):
        when = date(2026, 3, day)
        weekday = when.weekday() < 5
        usd = Decimal("0.9") + Decimal(day % 4) * Decimal("0.35") if weekday else Decimal("0.12")
        if day == 12:
            usd = Decimal("4.85")
        if day in (7, 8):
            usd = Decimal(0)
        daily.append((when, usd_to_nano(usd)))
    chart = spend_chart(
        daily,
        first_day=date(2026, 3, 1),
        last_day=date(2026, 3, 20),
        title="Spend per day in this workspace",
        period="March 2026 (calendar month, UTC)",
    )
    assert chart is not None
    return chart


def sample_dashboard(chart: SpendChart, *, admin: bool) -> Dashboard:
    models = (
        ModelEntry(
            "~anthropic/claude-sonnet-latest",
            "openrouter",
            ModelPricing(Decimal(2), Decimal(10), Decimal("0.2")),
            True,
        ),
        ModelEntry(
            "deepseek/deepseek-v4-flash",
            "openrouter",
            ModelPricing(Decimal("0.14"), Decimal("0.28"), None),
            False,
        ),
        ModelEntry(
            "openai/gpt-5-mini",
            "openrouter",
            ModelPricing(Decimal("0.25"), Decimal(2), Decimal("0.025")),
            False,
        ),
    )
    workspace = BudgetState("workspace", None, nano("50"), chart.total_nano, 0, MONTH)
    support = BudgetState("channel", "C2", nano("10"), nano("8.62"), 0, MONTH)
    admin_part = AdminDashboard(
        keys=(
            KeyStatus(
                "openrouter",
                "sk-or-v1-…9f3a",
                KeyInfo(
                    label="routerbot",
                    limit=Decimal(100),
                    limit_remaining=Decimal("61.07"),
                    usage=Decimal("38.93"),
                ),
            ),
        ),
        keys_problem=None,
        limits=(workspace, support),
        workspace=SpendLine("", chart.total_nano, 412, estimated=True),
        by_channel=(
            SpendLine("C1", nano("9.31"), 120),
            SpendLine("C2", nano("8.62"), 211, estimated=True),
            SpendLine("C3", nano("2.05"), 49),
            SpendLine("D9", nano("0.74"), 32),
        ),
        channels_total=4,
        top_users=(
            SpendLine("U2", nano("7.40"), 96),
            SpendLine("U1", nano("5.18"), 131),
            SpendLine("U3", nano("3.90"), 77, unknown_chats=1),
            SpendLine("U4", nano("1.77"), 40),
        ),
        chart=chart,
    )
    return Dashboard(
        user_id="U1",
        now=NOW,
        month="March 2026",
        models=models,
        mine=SpendLine("U1", nano("5.18"), 131),
        my_limits=(workspace,),
        admin=admin_part if admin else None,
    )


# -- Block Kit to HTML --------------------------------------------------------------------------

EMOJI = {":warning:": "⚠️", ":no_entry:": "⛔"}


def mrkdwn(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(
        r"&lt;@(\w+)&gt;", lambda m: f'<span class="mention">@{NAMES.get(m[1], m[1])}</span>', out
    )
    out = re.sub(
        r"&lt;#(\w+)&gt;", lambda m: f'<span class="mention">#{NAMES.get(m[1], m[1])}</span>', out
    )
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"<i>\1</i>", out)
    for code, char in EMOJI.items():
        out = out.replace(code, char)
    return out.replace("\n", "<br>")


def block_html(block: dict[str, Any], images: dict[str, str]) -> str:
    kind = block["type"]
    if kind == "header":
        return f"<h2>{html.escape(block['text']['text'])}</h2>"
    if kind == "section":
        return f'<div class="section">{mrkdwn(block["text"]["text"])}</div>'
    if kind == "context":
        parts = " ".join(mrkdwn(e["text"]) for e in block["elements"])
        return f'<div class="context">{parts}</div>'
    if kind == "divider":
        return "<hr>"
    if kind == "actions":
        buttons = "".join(
            f'<span class="button {e.get("style", "")}">{html.escape(e["text"]["text"])}</span>'
            for e in block["elements"]
        )
        return f'<div class="actions">{buttons}</div>'
    if kind == "image":
        title = html.escape(block.get("title", {}).get("text", ""))
        caption = f'<div class="caption">{title}</div>' if title else ""
        src = images[block["slack_file"]["id"]]
        return f'<div class="image">{caption}<img src="{src}"></div>'
    raise ValueError(f"no HTML for a {kind} block")


PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #fff; font: 15px/1.47 "Lato", "Helvetica Neue", Arial, sans-serif;
       color: #1d1c1d; }}
.tabs {{ display: flex; gap: 22px; padding: 14px 28px 0; border-bottom: 1px solid #ddd;
         font-weight: 700; color: #616061; }}
.tabs span {{ padding-bottom: 10px; }} .tabs .on {{ color: #1d1c1d; border-bottom: 2px solid #1264a3; }}
.app {{ display: flex; align-items: center; gap: 10px; padding: 16px 28px 4px; font-weight: 900;
        font-size: 18px; }}
.logo {{ width: 32px; height: 32px; border-radius: 6px; background: #2c2d30; color: #fff;
         display: flex; align-items: center; justify-content: center; font-size: 16px; }}
main {{ padding: 14px 28px 24px; max-width: 720px; }}
h2 {{ font-size: 18px; font-weight: 900; margin: 18px 0 6px; }}
.section {{ margin: 4px 0 8px; }} .context {{ font-size: 13px; color: #616061; margin: 6px 0; }}
code {{ font: 12px Menlo, Consolas, monospace; color: #e01e5a; background: #f8f8f8;
        border: 1px solid #e8e8e8; border-radius: 3px; padding: 1px 3px; }}
.mention {{ color: #1264a3; background: #e8f5fa; border-radius: 3px; padding: 0 2px; }}
hr {{ border: 0; border-top: 1px solid #ddd; margin: 20px 0 8px; }}
.button {{ display: inline-block; border: 1px solid #bbb; border-radius: 4px; padding: 6px 14px;
           font-weight: 700; font-size: 14px; }}
.button.primary {{ background: #007a5a; border-color: #007a5a; color: #fff; }}
.actions {{ margin: 8px 0 4px; }} .image {{ margin: 14px 0 6px; }} .image img {{ width: 100%; max-width: 560px; border-radius: 4px;
           border: 1px solid #eee; }} .caption {{ font-size: 13px; color: #616061; margin: 14px 0 4px; }}
</style></head><body>
<div class="app"><div class="logo">r</div>routerbot</div>
<div class="tabs"><span class="on">Home</span><span>Messages</span><span>About</span></div>
<main>{blocks}</main></body></html>"""


def home_html(view: dict[str, Any], images: dict[str, str]) -> str:
    return PAGE.format(blocks="\n".join(block_html(b, images) for b in view["blocks"]))


def screenshot(page: str, out: Path, width: int = 780) -> None:
    browser = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if browser is None:
        raise SystemExit("Chromium is needed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "home.html"
        source.write_text(page)
        raw = Path(tmp) / "shot.png"
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--window-size={width},3000",
                f"--screenshot={raw}",
                source.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        image = Image.open(raw).convert("RGB")
    # Trim the empty page below the content.
    box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    if box is not None:
        image = image.crop((0, 0, image.width, min(image.height, box[3] + 24)))
    image.save(out, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chart = sample_chart()
    png = render_png(chart)
    (args.out / "costs-chart.png").write_bytes(png)
    images = {CHART_FILE: "data:image/png;base64," + base64.b64encode(png).decode()}
    for name, admin in (("home-admin.png", True), ("home-member.png", False)):
        view = home_view(sample_dashboard(chart, admin=admin), chart_file_id=CHART_FILE)
        screenshot(home_html(view, images), args.out / name)
    for name in ("costs-chart.png", "home-admin.png", "home-member.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
