"""Files attached to the message that asks: what routerbot takes, its limits, and what each
file is once its bytes are looked at.

Front-ends download (each with its platform's auth) and hand the core neutral
:class:`Attachment` values; the bytes live in memory for the request only and are never
written anywhere. Before downloading, a front-end asks :func:`check_declared` with what the
platform says of each file (name, type, size), so an oversized or unsupported file is refused
without fetching a byte, and it streams each download to at most :func:`byte_limit` bytes.

    kind   accepted                          limit                        sent as
    image  PNG, JPEG, WebP, GIF (by content)  5 MiB, 8,000 px a side, 25 MP  an image part
    pdf    PDF (by content)                   10 MiB, 100 pages             a file part
    text   UTF-8 text (txt, md, csv, code…)   512 KiB                       inlined as text

At most :data:`MAX_ATTACHMENTS` files and :data:`MAX_TOTAL_BYTES` together. Images are read
lazily (Pillow reads the header, never decodes the pixels) and off the event loop.
"""

from __future__ import annotations

import asyncio
import io
import math
import mimetypes
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.core.errors import UserFacingError

Kind = Literal["image", "pdf", "text"]

MIB = 1024 * 1024
MAX_ATTACHMENTS = 5
MAX_TOTAL_BYTES = 20 * MIB
#: Per kind: Anthropic's API takes images up to 5 MB and 8,000 px a side, PDFs up to 100 pages;
#: inlined text is bounded so one file cannot fill a model's context.
MAX_BYTES: dict[Kind, int] = {"image": 5 * MIB, "pdf": 10 * MIB, "text": 512 * 1024}
MAX_IMAGE_SIDE = 8000
MAX_IMAGE_PIXELS = 25_000_000
MAX_PDF_PAGES = 100
#: The most any one download may read (the largest per-kind limit).
MAX_DOWNLOAD_BYTES = max(MAX_BYTES.values())

#: Prompt-token estimates for budgets (pessimistic on purpose): an image costs about
#: width × height / 750 tokens (Anthropic's rule; providers scale big images down), between
#: these bounds; a PDF page read natively 1,500–3,000 tokens (text plus the page as an image).
IMAGE_TOKENS_MIN = 85
IMAGE_TOKENS_MAX = 2500
PDF_TOKENS_PER_PAGE = 3000
#: When a PDF's pages cannot be counted (compressed object streams): one page per this many
#: bytes, at least one.
PDF_BYTES_PER_PAGE = 50 * 1024

_IMAGE_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
_IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp", "image/gif"}
_TEXT_TYPES = {
    "application/json",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "application/toml",
    "application/javascript",
    "application/x-sh",
    "application/sql",
    "application/x-ndjson",
}
_TEXT_EXTENSIONS = {
    ".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".toml",
    ".xml", ".log", ".ini", ".cfg", ".conf", ".rst", ".py", ".js", ".ts", ".tsx", ".jsx",
    ".java", ".kt", ".go", ".rs", ".c", ".h", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift",
    ".sql", ".sh", ".bash", ".zsh", ".ps1", ".html", ".css", ".scss", ".tex", ".diff", ".patch",
}  # fmt: skip
_VAGUE_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
_PDF_PAGE = re.compile(rb"/Type\s*/Page\b")
_PDF_COUNT = re.compile(rb"/Count\s+(\d{1,6})")

ACCEPTED = "images (PNG, JPEG, WebP, GIF), PDFs and text files"


class AttachmentRefused(UserFacingError):
    """A file cannot go to the model; nothing was downloaded further, nothing was sent."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file as the front-end downloaded it: held in memory for this request only."""

    name: str
    media_type: str
    data: bytes = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Declared:
    """What the platform says of a file before it is downloaded."""

    name: str
    media_type: str | None
    size: int | None


@dataclass(frozen=True, slots=True)
class Inspected:
    """An attachment looked at: its kind, and what the request and the budget need of it."""

    attachment: Attachment
    kind: Kind
    #: The media type from the content itself (an image's real format), for the request.
    media_type: str
    tokens: int
    #: Images: ``(width, height)``; PDFs: pages (None when they could not be counted).
    dimensions: tuple[int, int] | None = None
    pages: int | None = None
    #: Text files: the decoded text.
    text: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "image" and self.dimensions is not None:
            width, height = self.dimensions
            return f"{self.media_type.removeprefix('image/').upper()} image {width}×{height}"
        if self.kind == "pdf":
            return "PDF" if self.pages is None else f"PDF, {plural(self.pages, 'page')}"
        return "text"

    @property
    def reference(self) -> str:
        """What the conversation's history keeps of the file (never its bytes)."""
        size = human_size(len(self.attachment.data))
        return f"[attached: {self.attachment.name}, {self.label}, {size}]"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def human_size(size: int) -> str:
    if size < 1024:
        return plural(size, "byte")
    if size < MIB:
        return f"{size / 1024:.0f} KB"
    return f"{size / MIB:.1f} MB"


def _shown(name: str) -> str:
    name = " ".join(name.split()) or "(unnamed)"
    return f"`{name if len(name) <= 60 else name[:57] + '...'}`"


def kind_of(name: str, media_type: str | None) -> Kind | None:
    """The kind a file's type (or, for a vague type, its name) says it is; None: unsupported."""
    declared = (media_type or "").split(";")[0].strip().lower()
    if declared in _VAGUE_TYPES:
        declared = (mimetypes.guess_type(name)[0] or "").lower()
        extension = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if not declared and extension in _TEXT_EXTENSIONS:
            return "text"
    if declared in _IMAGE_TYPES:
        return "image"
    if declared == "application/pdf":
        return "pdf"
    if declared.startswith("text/") or declared in _TEXT_TYPES:
        return "text"
    return None


def byte_limit(kind: Kind | None) -> int:
    """How many bytes a download of this kind may read before it is stopped."""
    return MAX_BYTES[kind] if kind is not None else MAX_DOWNLOAD_BYTES


def too_large(name: str, kind: Kind | None) -> AttachmentRefused:
    limit = human_size(byte_limit(kind))
    what = {"image": "images", "pdf": "PDFs", "text": "text files"}.get(kind or "", "files")
    return AttachmentRefused(
        f"{_shown(name)} is too large: {what} may be at most {limit}. Nothing was sent."
    )


def unreadable(name: str) -> AttachmentRefused:
    return AttachmentRefused(
        f"I could not download {_shown(name)} from the chat; please attach it again. "
        "Nothing was sent."
    )


def missing_file(path: str) -> AttachmentRefused:
    """The console's ``--file`` names nothing readable (a long path shows its end)."""
    shown = path if len(path) <= 60 else "…" + path[-59:]
    return AttachmentRefused(f"There is no readable file at `{shown}`. Nothing was sent.")


def check_declared(files: Sequence[Declared]) -> None:
    """Refuse, before any download, what the platform's own description rules out: too many
    files, an unsupported type, a size over its kind's limit or a total over the limit."""
    if len(files) > MAX_ATTACHMENTS:
        raise AttachmentRefused(
            f"Attach at most {MAX_ATTACHMENTS} files to one question; "
            f"this one has {len(files)}. Nothing was sent."
        )
    total = 0
    for file in files:
        kind = kind_of(file.name, file.media_type)
        if kind is None:
            raise AttachmentRefused(
                f"{_shown(file.name)} is not a kind of file I can pass on: "
                f"I take {ACCEPTED}. Nothing was sent."
            )
        if file.size is not None and file.size > MAX_BYTES[kind]:
            raise too_large(file.name, kind)
        total += file.size or 0
    if total > MAX_TOTAL_BYTES:
        raise AttachmentRefused(
            f"The attached files come to {human_size(total)}; together they may be at most "
            f"{human_size(MAX_TOTAL_BYTES)}. Nothing was sent."
        )


async def inspect_all(attachments: Sequence[Attachment]) -> list[Inspected]:
    """Look at each file's content (off the event loop); raises AttachmentRefused."""
    check_declared([Declared(a.name, a.media_type, len(a.data)) for a in attachments])
    return [await asyncio.to_thread(inspect, a) for a in attachments]


def inspect(attachment: Attachment) -> Inspected:
    """Blocking: sniff the content, read image dimensions or count PDF pages, decode text."""
    kind = kind_of(attachment.name, attachment.media_type)
    data = attachment.data
    if kind is None:
        raise AttachmentRefused(
            f"{_shown(attachment.name)} is not a kind of file I can pass on: I take {ACCEPTED}."
        )
    if len(data) > MAX_BYTES[kind]:
        raise too_large(attachment.name, kind)
    if kind == "image":
        return _image(attachment)
    if kind == "pdf":
        return _pdf(attachment)
    return _text(attachment)


def _image(attachment: Attachment) -> Inspected:
    from PIL import Image  # Pillow comes with matplotlib; imported here, off the loop

    refused = AttachmentRefused(
        f"{_shown(attachment.name)} could not be read as a PNG, JPEG, WebP or GIF image."
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # open() reads the header only: the pixels are never decoded here.
            with Image.open(io.BytesIO(attachment.data)) as image:
                image_format, (width, height) = image.format, image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(attachment.name, "far too many pixels") from None
    except Exception:
        raise refused from None
    media_type = _IMAGE_FORMATS.get(image_format or "")
    if media_type is None:
        raise refused
    if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise _too_many_pixels(attachment.name, f"{width:,}×{height:,} pixels")
    tokens = min(max(math.ceil(width * height / 750), IMAGE_TOKENS_MIN), IMAGE_TOKENS_MAX)
    return Inspected(attachment, "image", media_type, tokens, dimensions=(width, height))


def _too_many_pixels(name: str, what: str) -> AttachmentRefused:
    return AttachmentRefused(
        f"{_shown(name)} has {what}; images may be at most {MAX_IMAGE_SIDE:,} pixels a side "
        f"and {MAX_IMAGE_PIXELS // 1_000_000} megapixels. Nothing was sent."
    )


def _pdf(attachment: Attachment) -> Inspected:
    data = attachment.data
    if b"%PDF-" not in data[:1024]:
        raise AttachmentRefused(f"{_shown(attachment.name)} is not a readable PDF.")
    counts = [int(n) for n in _PDF_COUNT.findall(data)]
    pages = max([len(_PDF_PAGE.findall(data)), *counts]) or None
    if pages is not None and pages > MAX_PDF_PAGES:
        raise AttachmentRefused(
            f"{_shown(attachment.name)} has {pages:,} pages; a PDF may have at most "
            f"{MAX_PDF_PAGES}. Nothing was sent."
        )
    estimated = pages or max(1, math.ceil(len(data) / PDF_BYTES_PER_PAGE))
    return Inspected(
        attachment, "pdf", "application/pdf", estimated * PDF_TOKENS_PER_PAGE, pages=pages
    )


def _text(attachment: Attachment) -> Inspected:
    try:
        text = attachment.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise AttachmentRefused(
            f"{_shown(attachment.name)} is not UTF-8 text; send it as a PDF, or paste the "
            "part that matters."
        )
    # Counted with the prompt's own text (the estimate reads the message's characters).
    return Inspected(attachment, "text", "text/plain", 0, text=text)
