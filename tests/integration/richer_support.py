"""Shared by the richer-chat tests: a catalogue entry that takes images and files, calls tools
and reasons, and small real files (a PNG drawn by Pillow, a PDF with countable pages)."""

from __future__ import annotations

import base64
import io
from decimal import Decimal
from typing import Any

from PIL import Image

from bot.core.pricing import usd_to_nano
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.openrouter_catalogue import FakeModel

RICH_ID = "anthropic/claude-3.5-sonnet"
TEXT_ONLY_ID = "openai/gpt-4o-mini"
PARAMETERS = ("temperature", "max_tokens", "max_completion_tokens", "tools", "reasoning")
#: The harnesses' default model, as a catalogue entry that takes everything richer chats send.
RICH = FakeModel(
    id=RICH_ID,
    name="Anthropic: Claude 3.5 Sonnet",
    prompt="0.000003",
    completion="0.000015",
    input_cache_read="0.0000003",
    context_length=200_000,
    input_modalities=("text", "image", "file"),
    supported_parameters=PARAMETERS,
    web_search="0.01",
)


async def enrich(openrouter: FakeOpenRouter, catalogue: Any) -> None:
    """Serve :data:`RICH` and make routerbot's cached catalogue see it now."""
    openrouter.catalogue.add(RICH)
    assert catalogue is not None
    # A refresh already in flight (the one at start) may predate the change: ask again.
    for _ in range(3):
        await catalogue.refresh()
        entry = catalogue.entry(RICH_ID)
        if entry is not None and "image" in entry.input_modalities:
            return
    raise AssertionError("routerbot's catalogue never saw the richer model")


def png(width: int = 320, height: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def pdf(pages: int) -> bytes:
    head = b"%PDF-1.4\n<< /Type /Pages /Count " + str(pages).encode() + b" >>\n"
    return head + b"<< /Type /Page >>\n" * pages + b"%%EOF\n"


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def charged_nano(openrouter: FakeOpenRouter, generation_id: str | None) -> int:
    """What the fake charged for a generation, in nano-USD."""
    assert generation_id is not None
    total = openrouter.generations[generation_id].data["total_cost"]
    return usd_to_nano(Decimal(total))
