"""What the fake OpenRouter makes of richer requests, per ``reference/openrouter-openapi.yaml``.

It checks what it is sent, and answers 400 for anything malformed, as the real API would:

* message ``content`` as a string or a list of parts, each ``text`` (``ChatContentText``),
  ``image_url`` (``ChatContentImage``: ``url`` an http(s) or base64 ``data:image/…`` URL) or
  ``file`` (``ChatContentFile``: ``filename`` and ``file_data``, a URL or base64 data URL);
* ``plugins``: objects with an ``id``; ``file-parser`` with ``pdf.engine`` one of the
  ``PDFParserEngine`` values;
* ``tools``: ``openrouter:web_search`` (``parameters`` integers where numbers are due) or
  ``function`` tools;
* ``reasoning.effort`` one of the enum's values.

A model whose catalogue entry does not take an input kind answers 404 "No endpoints found that
support image input" (or file input), OpenRouter's words for it.

And it answers richly: with the web search tool, the model "searches" (once unless scripted;
at most ``max_uses``) and cites its sources as ``url_citation`` annotations; usage carries
``server_tool_use_details.web_search_requests`` and the cost adds each search at the model's
``pricing.web_search`` (else Exa's $4 per 1,000 results × ``max_results``). With
``reasoning.effort`` the stream first sends ``reasoning`` and ``reasoning_details`` deltas
(:data:`REASONING_TEXT`, which must never reach a user) and usage counts reasoning tokens.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.fakes.openrouter_catalogue import FakeModel

REASONING_TEXT = "SECRET-REASONING: weighing the options"
#: Reasoning tokens per effort when a script does not say.
REASONING_BY_EFFORT = {"minimal": 16, "low": 64, "medium": 256, "high": 1024}
EFFORTS = ("max", "xhigh", "high", "medium", "low", "minimal", "none")
PDF_ENGINES = ("mistral-ocr", "pdf-text", "native", "cloudflare-ai")
EXA_PER_RESULT = Decimal("0.004")
#: Prompt tokens the fake charges per content part (honest enough to see them counted).
IMAGE_TOKENS = 765
FILE_TOKENS = 1500
#: Prompt tokens the search results add, per search.
SEARCH_TOKENS = 1200
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>[A-Za-z0-9+/=]*)$")


class Invalid(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Received:
    """What one chat request asked for beyond text."""

    images: list[tuple[str, bytes]] = field(default_factory=list)
    files: list[tuple[str, str, bytes]] = field(default_factory=list)
    web: dict[str, Any] | None = None
    effort: str | None = None
    text_words: int = 0


def _decoded(url: object, what: str) -> tuple[str, bytes]:
    if not isinstance(url, str):
        raise Invalid(400, f"{what}: expected a string")
    if url.startswith(("https://", "http://")):
        return "url", b""
    match = _DATA_URL.match(url)
    if match is None:
        raise Invalid(400, f"{what}: not a URL or base64 data URL")
    try:
        return match["type"], base64.b64decode(match["data"], validate=True)
    except binascii.Error:
        raise Invalid(400, f"{what}: invalid base64") from None


def _part(part: object, got: Received) -> None:
    if not isinstance(part, dict):
        raise Invalid(400, "content parts must be objects")
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        got.text_words += len(part["text"].split())
    elif kind == "image_url" and isinstance(part.get("image_url"), dict):
        media, data = _decoded(part["image_url"].get("url"), "image_url.url")
        if media != "url" and not media.startswith("image/"):
            raise Invalid(400, f"image_url.url: {media} is not an image")
        got.images.append((media, data))
    elif kind == "file" and isinstance(part.get("file"), dict):
        file = part["file"]
        if not isinstance(file.get("filename"), str) or not file["filename"]:
            raise Invalid(400, "file.filename is required")
        media, data = _decoded(file.get("file_data"), "file.file_data")
        got.files.append((file["filename"], media, data))
    else:
        raise Invalid(400, f"invalid content part: {str(part)[:80]}")


def check(body: dict[str, Any], model: FakeModel | None) -> Received:
    """Validate the richer fields of a chat body; raises :class:`Invalid`."""
    got = Received()
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            if message.get("role") not in ("user", "system", "assistant"):
                raise Invalid(400, "content parts are for user messages")
            for part in content:
                _part(part, got)
        elif isinstance(content, str):
            got.text_words += len(content.split())
        else:
            raise Invalid(400, "message content must be a string or a list of parts")
    _plugins(body.get("plugins"))
    got.web = _tools(body.get("tools"))
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict) or reasoning.get("effort") not in (*EFFORTS, None):
            raise Invalid(400, "reasoning.effort must be one of " + ", ".join(EFFORTS))
        got.effort = reasoning.get("effort")
    inputs = model.input_modalities if model is not None else ("text", "image", "file")
    if got.images and "image" not in inputs:
        raise Invalid(404, "No endpoints found that support image input")
    if got.files and "file" not in inputs:
        raise Invalid(404, "No endpoints found that support file input")
    return got


def _plugins(plugins: object) -> None:
    if plugins is None:
        return
    if not isinstance(plugins, list):
        raise Invalid(400, "plugins must be a list")
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("id"), str):
            raise Invalid(400, "each plugin needs an id")
        if plugin["id"] == "file-parser":
            engine = (plugin.get("pdf") or {}).get("engine")
            if engine is not None and engine not in PDF_ENGINES:
                raise Invalid(400, f"file-parser: unknown pdf engine {engine!r}")


def _tools(tools: object) -> dict[str, Any] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise Invalid(400, "tools must be a list")
    web: dict[str, Any] | None = None
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "openrouter:web_search":
            parameters = tool.get("parameters") or {}
            for name in ("max_results", "max_uses", "max_total_results"):
                value = parameters.get(name)
                if value is not None and (not isinstance(value, int) or value < 1):
                    raise Invalid(400, f"web_search.{name} must be a positive integer")
            web = dict(parameters)
        elif kind != "function":
            raise Invalid(400, f"unknown tool type {kind!r}")
    return web


@dataclass
class Richness:
    """How one answer is enriched: searches, their citations and cost, reasoning."""

    searches: int = 0
    search_price: Decimal = Decimal(0)
    citations: list[tuple[str, str]] = field(default_factory=list)
    reasoning: bool = False
    parts_tokens: int = 0

    @classmethod
    def of(
        cls,
        got: Received,
        model: FakeModel | None,
        *,
        searches: int | None,
        citations: list[tuple[str, str]] | None,
    ) -> Richness:
        parts_tokens = IMAGE_TOKENS * len(got.images) + FILE_TOKENS * len(got.files)
        if got.web is None:
            return cls(reasoning=got.effort not in (None, "none"), parts_tokens=parts_tokens)
        results = got.web.get("max_results") or 5
        ran = 1 if searches is None else searches
        ran = min(ran, got.web.get("max_uses") or ran)
        listed = model.web_search if model is not None else None
        price = Decimal(listed) if listed is not None else EXA_PER_RESULT * results
        cited = citations if citations is not None else default_citations(ran)
        return cls(
            searches=ran,
            search_price=price,
            citations=cited if ran else [],
            reasoning=got.effort not in (None, "none"),
            parts_tokens=parts_tokens + SEARCH_TOKENS * ran,
        )

    def annotations(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "url_citation",
                "url_citation": {
                    "url": url,
                    "title": title,
                    "content": f"An excerpt of {title}.",
                    "start_index": 0,
                    "end_index": 10,
                },
            }
            for url, title in self.citations
        ]

    def usage_fields(self) -> dict[str, Any]:
        if not self.searches:
            return {}
        return {
            "server_tool_use_details": {
                "tool_calls_requested": self.searches,
                "tool_calls_executed": self.searches,
                "web_search_requests": self.searches,
            }
        }

    @property
    def search_cost(self) -> Decimal:
        return self.searches * self.search_price


def default_citations(searches: int) -> list[tuple[str, str]]:
    """Two pages per search, the first cited twice (as real answers do)."""
    pages = [(f"https://news.example/{i}", f"Story {i}") for i in range(1, 2 * searches + 1)]
    return pages[:1] + pages
