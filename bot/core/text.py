"""Text entering routerbot, made safe once, at the edge where it arrives.

Every front-end passes what a person typed (console bytes, Slack and Discord payload text, form
inputs) through :func:`clean_text` before anything else reads it, and a pasted API key through
:func:`clean_key`. After that no encoding error can reach an HTTP client (httpx encodes a JSON
body as strict UTF-8 and a header value as ASCII) or the database (PostgreSQL refuses NUL in
text, and neither database stores a lone surrogate). Files an operator wrote are decoded with
:func:`decode_utf8` instead: a bad byte there is a mistake to report, not to paper over.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls but tab, newline and carriage return; DEL; the C1 controls. No platform shows
# them, PostgreSQL refuses NUL in text, and a terminal obeys the escape sequences among them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NEWLINE = re.compile("\r\n?")
_BOM = "\ufeff"

# Invisible characters that ride along when a key is copied from a web page or a chat.
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff]")
# Quotes and backticks a key gets wrapped in by editors, chat clients and Markdown.
_KEY_WRAPPERS = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
# Visible ASCII: what an HTTP header carries as it is (httpx encodes header values as ASCII).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
MIN_KEY_LENGTH = 8


def clean_text(raw: str | bytes) -> str:
    """``raw`` as text that can go anywhere: UTF-8 decoded (bad bytes become U+FFFD), lone
    surrogates replaced, line ends made ``\\n``, a leading byte-order mark and control
    characters other than tab and newline removed. Idempotent."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", "replace")
    else:
        text = raw
        if _SURROGATE.search(text):
            # A surrogate pair that arrived as two code points (JSON "\ud83d\ude00" read by a
            # lenient parser) is one real character; every other surrogate is a broken one.
            text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _NEWLINE.sub("\n", text.removeprefix(_BOM))
    return _CONTROL.sub("", text)


def clean_key(raw: str | bytes) -> str:
    """A pasted API key without what copying added: zero-width characters, surrounding
    quotes or backticks (straight or curly) and whitespace. Idempotent."""
    key = _ZERO_WIDTH.sub("", clean_text(raw))
    previous = None
    while key != previous:  # "“ sk-… ”" loses its quotes, then the spaces inside them
        previous = key
        key = key.strip().strip(_KEY_WRAPPERS)
    return key


def looks_like_key(key: str) -> bool:
    """Whether a cleaned key can be an API key at all: long enough, and nothing in it that an
    HTTP header cannot carry (no spaces, nothing outside visible ASCII)."""
    return len(key) >= MIN_KEY_LENGTH and _HEADER_SAFE.fullmatch(key) is not None


def decode_utf8(raw: bytes, name: str) -> str:
    """``raw`` decoded as UTF-8, or a ``ValueError`` naming the file (``name``) and where it
    stops being UTF-8: line, column and the byte, so an operator can find it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        raise ValueError(
            f"{name}: not UTF-8 text (line {line}, column {column}: byte "
            f"0x{raw[exc.start]:02x}); save it as UTF-8."
        ) from None
