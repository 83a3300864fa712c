"""Text made safe at the edge: whatever arrives, what comes out encodes and stores cleanly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.text import clean_key, clean_text, decode_utf8, looks_like_key

# Every code point, lone surrogates included (hypothesis leaves them out by default).
any_unicode = st.text(st.characters(codec=None, categories=None), max_size=200)
text_or_bytes = st.one_of(any_unicode, st.binary(max_size=200))


@given(text_or_bytes)
def test_clean_text_always_encodes_and_never_holds_controls(raw: str | bytes) -> None:
    text = clean_text(raw)
    text.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in text
    assert all(ch in "\t\n" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) for ch in text)
    assert clean_text(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/chat caf\xe9", "/chat caf\ufffd"),
        ("caf\udce9", "caf\ufffd"),  # what Python's surrogateescape makes of that byte
        ("a\ud83d\ude00b", "a\U0001f600b"),  # a pair that arrived split is one emoji
        ("a\ud800b", "a\ufffdb"),
        ("nul\x00 and \x1b[31mred\x1b[0m", "nul and [31mred[0m"),
        ("tabs\tand\r\nlines\rkept", "tabs\tand\nlines\nkept"),
        ("\ufeff/help", "/help"),
        ("zero\u200bwidth joiner \U0001f468\u200d\U0001f469 kept", None),
        ("caf\u00e9 \u65e5\u672c", None),
    ],
)
def test_clean_text(raw: str | bytes, expected: str | None) -> None:
    assert clean_text(raw) == (raw if expected is None else expected)


KEY = "sk-or-v1-0123456789abcdef"


@pytest.mark.parametrize(
    "pasted",
    [
        KEY,
        f"  {KEY}\n",
        f"{KEY}\u200b",
        f"\ufeff{KEY}\u2060",
        f"\u201c{KEY}\u201d",
        f"\u2018{KEY}\u2019",
        f'"{KEY}"',
        f"'{KEY}'",
        f"`{KEY}`",
        f"```{KEY}```",
        f"\u201c {KEY}\u200b \u201d",
        f"\u00a0{KEY}\u00a0",
        f"{KEY}\u200b".encode(),
    ],
)
def test_clean_key_removes_what_copying_added(pasted: str | bytes) -> None:
    assert clean_key(pasted) == KEY
    assert looks_like_key(clean_key(pasted))


@pytest.mark.parametrize(
    "bad", ["", "short", "sk-or-v1 with spaces", "sk-or-v1-caf\u00e9caf\u00e9", "sk-\ufffd-0123456"]
)
def test_keys_a_header_cannot_carry_are_not_keys(bad: str) -> None:
    assert not looks_like_key(clean_key(bad))


@given(text_or_bytes)
def test_a_key_that_looks_like_one_fits_an_http_header(raw: str | bytes) -> None:
    key = clean_key(raw)
    assert clean_key(key) == key
    if looks_like_key(key):
        key.encode("ascii")
        assert not any(ch.isspace() for ch in key)


def test_decode_utf8_names_the_file_line_and_byte() -> None:
    assert decode_utf8("caf\u00e9".encode(), "x.json") == "caf\u00e9"
    with pytest.raises(
        ValueError, match=r"^x\.json: not UTF-8 text \(line 2, column 5: byte 0xe9\)"
    ):
        decode_utf8(b'{\n"caf\xe9": 1}', "x.json")
