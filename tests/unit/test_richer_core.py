"""Richer chats in the core, over in-memory ports: what files, web search and effort become
in the request, what is refused (one sentence naming models that can), the limits, the
estimate, the footer, the sources and the ledger."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image

from adapters.base import Citation, ImagePart, StreamFailed, StreamFinished, TextDelta, Usage
from adapters.catalogue import CatalogueEntry, CataloguePricing
from adapters.errors import ModelNotFoundError
from bot.config import Settings
from bot.core import commands as c
from bot.core.catalogue import Catalogue
from bot.core.chat import attachments as a
from bot.core.chat.attachments import Attachment, Declared
from bot.core.chat.sources import MAX_SOURCES, sources_of
from bot.core.dispatch import Dispatcher
from bot.core.errors import UsageError
from bot.core.format import format_footer
from bot.core.pricing import ChatCost, compute_cost, settle_cost
from bot.core.replies import ChatCompleted, ChatFailed, TextReply
from bot.core.service import ProviderService
from bot.core.spend.guard import DatabaseBudgetGuard
from tests.unit.core_support import (
    ADMIN,
    CHEAP,
    KEY,
    MEMBER,
    STRONG,
    Clock,
    Core,
    FakeVault,
    ScriptedProvider,
    build_core,
    model_settings,
)
from tests.unit.memory_store import MemoryStore

ALL_INPUTS = ("text", "image", "file")
TOOLS = ("tools", "reasoning", "max_completion_tokens")


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def pdf(pages: int) -> bytes:
    kids = b"".join(b"<< /Type /Page /Parent 2 0 R >>\n" for _ in range(pages))
    head = b"%PDF-1.4\n<< /Type /Pages /Count " + str(pages).encode() + b" >>\n"
    return head + kids + b"%%EOF"


def entry(model_id: str, inputs: tuple[str, ...], params: tuple[str, ...], **price: str) -> Any:
    return CatalogueEntry(
        id=model_id,
        pricing=CataloguePricing(
            Decimal(price.get("input", "3")),
            Decimal(price.get("output", "15")),
            None,
            Decimal(price["web"]) if "web" in price else None,
        ),
        context_length=200_000,
        input_modalities=inputs,
        supported_parameters=params,
    )


async def richer_core(*, strong_web: str | None = "0.01") -> Core:
    """STRONG takes images and files, calls tools, reasons; CHEAP takes text only."""
    strong_price = {"web": strong_web} if strong_web else {}
    entries = [
        entry(STRONG, ALL_INPUTS, TOOLS, **strong_price),
        entry(CHEAP, ("text",), ("max_completion_tokens",), input="0.15", output="0.6"),
    ]

    async def fetch() -> list[CatalogueEntry]:
        return entries

    catalogue = Catalogue(fetch)
    await catalogue.refresh()
    store, provider, clock = MemoryStore(), ScriptedProvider(), Clock()
    service = ProviderService(
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        store=store,
        vault=FakeVault(),
        adapters={"openrouter": provider},
        model_settings=model_settings(),
        budgets=DatabaseBudgetGuard(store, clock=clock),
        clock=clock,
        catalogue=catalogue,
    )
    core = Core(store, provider, service, Dispatcher(service), clock)
    replies = await core.run(ADMIN, f"/apikey set {KEY}")
    assert isinstance(replies[0], TextReply) and "Saved" in replies[0].text
    return core


async def chat(core: Core, command: c.Chat) -> list[object]:
    return [r async for r in core.dispatcher.run(MEMBER, command)]


# -- the grammar ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/chat --web what's new?", c.Chat("what's new?", web=True)),
        ("/chat --effort high think", c.Chat("think", effort="high")),
        ("/chat --effort=LOW think", c.Chat("think", effort="low")),
        (
            "/chat --web --model a/b --effort medium  two  words",
            c.Chat("two  words", "a/b", web=True, effort="medium"),
        ),
        ("/chat -- --web is a flag", c.Chat("--web is a flag")),
    ],
)
def test_chat_flags(text: str, expected: c.Chat) -> None:
    assert c.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/chat --effort extreme hi", "--effort is low, medium or high."),
        ("/chat --effort", "--effort is low, medium or high."),
        ("/chat --web --web hi", "Give --web once."),
        ("/chat --web=yes hi", "Unknown option `--web`."),
        ("/chat --file x.png hi", "Unknown option `--file`."),
        ("/chat --web", "The prompt is empty."),
    ],
)
def test_chat_flag_mistakes(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as info:
        c.parse(text)
    assert info.value.message.startswith(problem)
    assert "[--web] [--effort low|medium|high]" in info.value.message


# -- attachments: kinds and limits ------------------------------------------------------------


def test_declared_files_are_checked_before_any_download() -> None:
    a.check_declared([Declared("a.png", "image/png", 1000), Declared("b.md", None, 10)])
    with pytest.raises(a.AttachmentRefused, match="at most 5 files"):
        a.check_declared([Declared(f"{i}.png", "image/png", 1) for i in range(6)])
    with pytest.raises(a.AttachmentRefused, match=r"`big.png` is too large: images .* 5.0 MB"):
        a.check_declared([Declared("big.png", "image/png", 5 * a.MIB + 1)])
    with pytest.raises(a.AttachmentRefused, match=r"`movie\.mp4` is not a kind of file"):
        a.check_declared([Declared("movie.mp4", "video/mp4", 10)])
    with pytest.raises(a.AttachmentRefused, match=r"together they may be at most 20\.0 MB"):
        a.check_declared([Declared(f"{i}.pdf", "application/pdf", 9 * a.MIB) for i in range(3)])


@pytest.mark.parametrize(
    ("name", "media_type", "kind"),
    [
        ("x.png", "image/png", "image"),
        ("x.jpg", "image/jpeg", "image"),
        ("x.jpg", "application/octet-stream", "image"),
        ("x.pdf", "application/pdf; charset=binary", "pdf"),
        ("notes.md", None, "text"),
        ("main.py", "text/x-python", "text"),
        ("data.json", "application/json", "text"),
        ("photo.heic", "image/heic", None),
        ("logo.svg", "image/svg+xml", None),
        ("archive.zip", "application/zip", None),
    ],
)
def test_kinds(name: str, media_type: str | None, kind: str | None) -> None:
    assert a.kind_of(name, media_type) == kind


def test_an_image_is_read_by_its_content_lazily() -> None:
    seen = a.inspect(Attachment("shot.jpg", "image/jpeg", png(1500, 1000)))  # really a PNG
    assert (seen.kind, seen.media_type, seen.dimensions) == ("image", "image/png", (1500, 1000))
    assert seen.tokens == 2000  # 1500 × 1000 / 750
    assert seen.reference.startswith("[attached: shot.jpg, PNG image 1500×1000, ")
    assert a.inspect(Attachment("tiny.png", "image/png", png(4, 4))).tokens == a.IMAGE_TOKENS_MIN


@pytest.mark.parametrize(("width", "height"), [(8001, 10), (6000, 5000)])
def test_too_many_pixels_is_refused(width: int, height: int) -> None:
    with pytest.raises(a.AttachmentRefused, match=f"{width:,}×{height:,} pixels"):
        a.inspect(Attachment("huge.png", "image/png", png(width, height)))


def test_not_an_image_pdf_or_text() -> None:
    with pytest.raises(a.AttachmentRefused, match="could not be read as a PNG"):
        a.inspect(Attachment("fake.png", "image/png", b"GIF? no, nothing"))
    with pytest.raises(a.AttachmentRefused, match="not a readable PDF"):
        a.inspect(Attachment("fake.pdf", "application/pdf", b"hello"))
    with pytest.raises(a.AttachmentRefused, match="not UTF-8 text"):
        a.inspect(Attachment("bin.txt", "text/plain", b"\xff\xfe\x00\x01"))


def test_pdf_pages_are_counted_and_bounded() -> None:
    seen = a.inspect(Attachment("r.pdf", "application/pdf", pdf(3)))
    assert (seen.pages, seen.tokens, seen.label) == (3, 9000, "PDF, 3 pages")
    with pytest.raises(a.AttachmentRefused, match="has 101 pages"):
        a.inspect(Attachment("long.pdf", "application/pdf", pdf(101)))
    opaque = a.inspect(Attachment("o.pdf", "application/pdf", b"%PDF-1.7\n" + b"x" * 120_000))
    assert (opaque.pages, opaque.tokens) == (None, 3 * a.PDF_TOKENS_PER_PAGE)


# -- costs, footer, sources ------------------------------------------------------------------


def test_computed_cost_includes_searches_at_their_price() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0, web_search_requests=2)
    priced = c_pricing(web="0.01")
    assert compute_cost(usage, priced) == Decimal("3.02")
    assert compute_cost(usage, c_pricing()) is None  # searches at no known price
    assert settle_cost(usage, priced) == ChatCost(Decimal("3.02"), "computed", Decimal("0.02"))
    reported = Usage(prompt_tokens=1, cost=Decimal("0.5"), web_search_requests=2)
    assert settle_cost(reported, priced) == ChatCost(Decimal("0.5"), "reported", Decimal("0.02"))


def c_pricing(**price: str) -> Any:
    from adapters.base import ModelPricing

    web = Decimal(price["web"]) if "web" in price else None
    return ModelPricing(Decimal(3), Decimal(15), None, web)


def test_footer_shows_reasoning_and_searches() -> None:
    footer = format_footer(
        model="m/x",
        prompt_tokens=1234,
        completion_tokens=567,
        cost=ChatCost(Decimal("0.0123"), "reported"),
        seconds=2.4,
        reasoning_tokens=320,
        searches=2,
    )
    assert footer == "m/x · 1,234 in · 567 out (320 reasoning) · 2 searches · $0.0123 · 2.4 s"
    one = format_footer(
        model="m", prompt_tokens=1, completion_tokens=1, cost=ChatCost(None, "unknown"),
        seconds=1, searches=1,
    )  # fmt: skip
    assert " · 1 search · " in one


def test_sources_are_web_links_once_each_capped() -> None:
    citations = [
        Citation("https://Example.test/a#part", "  A   page "),
        Citation("https://example.test/a/", "again"),
        Citation("javascript:alert(1)", "no"),
        Citation("ftp://files.test/x", "no"),
        Citation("https://b.test/" + "x" * 600, "too long"),
        Citation("https://untitled.test/p", None),
        *[Citation(f"https://c{i}.test/", "T" * 200) for i in range(10)],
    ]
    sources = sources_of(citations)
    assert len(sources) == MAX_SOURCES
    assert sources[0].url == "https://Example.test/a" and sources[0].title == "A page"
    assert sources[1].title == "untitled.test"
    assert all(len(s.title) <= 80 for s in sources)


# -- through the core ---------------------------------------------------------------------------


async def test_files_web_and_effort_reach_the_request_and_the_ledger() -> None:
    core = await richer_core()
    usage = Usage(
        prompt_tokens=5000,
        completion_tokens=600,
        reasoning_tokens=400,
        web_search_requests=2,
    )
    citations = (Citation("https://news.test/1", "One"), Citation("https://news.test/1#x", "1"))
    core.provider.scripts.append(
        [TextDelta("Done."), StreamFinished(usage, STRONG, "gen-r", "stop", citations)]
    )
    files = (
        Attachment("shot.png", "image/png", png()),
        Attachment("report.pdf", "application/pdf", pdf(2)),
        Attachment("notes.md", "text/markdown", b"# Notes\nship it"),
    )
    command = c.Chat("Summarise", web=True, effort="high", attachments=files)
    replies = await chat(core, command)
    done = replies[-1]
    assert isinstance(done, ChatCompleted), replies

    [request] = core.provider.requests
    newest = request.messages[-1]
    assert newest.content.startswith("Summarise\n\n--- notes.md ---\n# Notes\nship it")
    assert [type(p).__name__ for p in newest.parts] == ["ImagePart", "FilePart"]
    assert isinstance(newest.parts[0], ImagePart) and newest.parts[0].data == files[0].data
    assert request.web_search is not None and request.web_search.max_results == 5
    assert request.reasoning_effort == "high"

    # 5,000 × $3 + 600 × $15 per 1M, plus 2 searches at $0.01
    assert done.cost == ChatCost(Decimal("0.044"), "computed", Decimal("0.02"))
    assert " · 600 out (400 reasoning) · 2 searches · ≈$0.0440 · " in done.footer
    assert [(s.url, s.title) for s in done.sources] == [("https://news.test/1", "One")]
    [row] = core.store.data.ledger
    assert (row.web_search_requests, row.web_search_cost_nano) == (2, 20_000_000)
    assert row.reasoning_tokens == 400 and row.cost_nano == 44_000_000

    async with core.store.transaction() as tx:
        stored = await tx.conversations.history(row.workspace_id, done.conversation_id, limit=9)
    prompt = stored[0].content
    assert prompt.startswith("Summarise\n[attached: shot.png, PNG image 64×48, ")
    assert "[attached: report.pdf, PDF, 2 pages, " in prompt and "ship it" not in prompt


async def test_a_model_without_image_input_is_refused_naming_models_that_take_images() -> None:
    core = await richer_core()
    await core.run(ADMIN, f"/models add {CHEAP}")
    command = c.Chat("what is this?", CHEAP, attachments=(Attachment("a.png", "image/png", png()),))
    [failed] = await chat(core, command)
    assert isinstance(failed, ChatFailed)
    assert failed.text == (
        f"`{CHEAP}` does not take images; allowlisted models that do: `{STRONG}` "
        "(ask one of them with --model <id>). Nothing was sent."
    )
    assert core.provider.requests == [] and core.store.data.ledger == []


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (c.Chat("hi", CHEAP, effort="low"), "has no reasoning effort to set; allowlisted models"),
        (c.Chat("hi", CHEAP, web=True), "cannot call tools, so it cannot search the web"),
    ],
)
async def test_effort_and_web_need_a_model_that_can(command: c.Chat, problem: str) -> None:
    core = await richer_core()
    [failed] = await chat(core, command)
    assert isinstance(failed, ChatFailed) and problem in failed.text, failed
    assert f"`{STRONG}`" in failed.text and core.provider.requests == []


async def test_search_price_falls_back_to_exa_and_the_budget_holds_the_bound() -> None:
    """Searches and their results are the part of a chat's worst case that no answer cap
    bounds: 3 searches × (5 results × $0.004) and 15,000 result tokens ($0.105 at $3/1M).
    A limit with less than that left refuses before anything is sent; one with more admits
    the chat with its answer (reasoning included) capped to what is left."""
    core = await richer_core(strong_web=None)
    await core.run(ADMIN, "/budget set 0.10")
    [failed] = await chat(core, c.Chat("x" * 100, web=True, effort="high"))
    assert isinstance(failed, ChatFailed) and "budget" in failed.text, failed
    assert core.provider.requests == []
    await core.run(ADMIN, "/budget set 0.20")
    replies = await chat(core, c.Chat("hi", web=True, effort="high"))
    assert isinstance(replies[-1], ChatCompleted), replies
    sent = core.provider.requests[-1]
    assert sent.web_search is not None
    # Capped below what high effort alone may use, and within what is left after the
    # searches' bound: $0.095 at $15 per 1M output tokens.
    assert sent.max_completion_tokens is not None
    assert sent.max_completion_tokens < 16_384
    assert sent.max_completion_tokens * 15 <= 95_000


async def test_the_providers_unsupported_input_is_one_sentence() -> None:
    """Without a catalogue the provider decides; its 404 is said for what it is."""
    core = build_core(budgets=False)  # no catalogue: the provider decides
    await core.run(ADMIN, f"/apikey set {KEY}")
    refused = ModelNotFoundError(
        status_code=404, detail="No endpoints found that support image input", model=STRONG
    )
    core.provider.scripts.append([StreamFailed(refused, partial=False)])
    [*_, failed] = await chat(
        core, c.Chat("what?", attachments=(Attachment("a.png", "image/png", png()),))
    )
    assert isinstance(failed, ChatFailed)
    assert failed.text == (
        f"No provider serving `{STRONG}` supports image input; ask a model that does "
        "(/models info <id> lists a model's input kinds). Nothing was charged."
    )
    [row] = core.store.data.ledger
    assert row.outcome == "error" and row.cost_nano == 0
