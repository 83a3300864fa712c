"""The sources listed under an answer that searched the web.

The provider's ``url_citation`` annotations repeat (one per cited passage, sometimes one per
chunk); an answer lists each page once, web links only (``http``/``https``), at most
:data:`MAX_SOURCES`, in the order the answer first cited them, each with a short one-line title
(the page's host when the provider gave none). Front-ends render them in their own idiom with
link previews off, so a list of links never becomes a wall of previews.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from adapters.base import Citation

__all__ = ["MAX_SOURCES", "MAX_TITLE", "Source", "sources_of"]

MAX_SOURCES = 5
MAX_TITLE = 80
#: Longer URLs are not listed (they are rarely real pages and break message layouts).
MAX_URL = 500


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    title: str


def _key(url: str) -> tuple[str, str, str, str]:
    """Two links to the same page (case of the host, a fragment, a trailing slash) are one."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query


def _title(citation: Citation, host: str) -> str:
    title = " ".join((citation.title or "").split()) or host
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1].rstrip() + "…"


def sources_of(citations: Iterable[Citation]) -> tuple[Source, ...]:
    found: dict[tuple[str, str, str, str], Source] = {}
    for citation in citations:
        url = citation.url.strip()
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            continue
        if len(url) > MAX_URL or any(c.isspace() for c in url):
            continue
        key = _key(url)
        if key in found:
            continue
        # Drop the fragment: it points inside a page the reader opens anyway.
        clean = urlunsplit(parts._replace(fragment=""))
        found[key] = Source(clean, _title(citation, parts.hostname))
        if len(found) == MAX_SOURCES:
            break
    return tuple(found.values())
