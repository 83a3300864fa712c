"""Money, the cost footer and the message splitter."""

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.format import (
    format_footer,
    format_usd,
    split_message,
    split_with_footer,
)
from bot.core.pricing import ChatCost


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("0", "$0.00"),
        ("0.0123", "$0.0123"),
        ("0.012345", "$0.0123"),
        ("0.000021", "$0.000021"),
        ("0.0000213", "$0.000021"),
        ("1234.5", "$1,234.50"),
        ("2", "$2.00"),
    ],
)
def test_format_usd(amount: str, text: str) -> None:
    assert format_usd(Decimal(amount)) == text


def test_footer_matches_the_spec_shape() -> None:
    footer = format_footer(
        model="anthropic/claude-3.5-sonnet",
        prompt_tokens=1234,
        completion_tokens=567,
        cost=ChatCost(Decimal("0.0123"), "reported"),
        seconds=2.44,
    )
    assert footer == "anthropic/claude-3.5-sonnet · 1,234 in · 567 out · $0.0123 · 2.4 s"


def test_footer_marks_computed_and_unknown_costs() -> None:
    computed = format_footer(
        model="m/x",
        prompt_tokens=1,
        completion_tokens=1,
        cost=ChatCost(Decimal("0.0123"), "computed"),
        seconds=1,
    )
    assert "≈$0.0123" in computed
    unknown = format_footer(
        model="m/x",
        prompt_tokens=None,
        completion_tokens=None,
        cost=ChatCost(None, "unknown"),
        seconds=1,
    )
    assert "cost unknown" in unknown


FENCE = re.compile(r"^ {0,3}```", re.MULTILINE)


def _balanced(part: str) -> bool:
    """CommonMark's rule: a fence closes only with the same character, at least as long, and
    no info string."""
    open_marker: str | None = None
    for text_line in part.splitlines():
        m = re.match(r"^ {0,3}(`{3,}|~{3,})(.*)$", text_line)
        if not m:
            continue
        marker, info = m.group(1), m.group(2).strip()
        if open_marker is None:
            open_marker = marker
        elif marker[0] == open_marker[0] and len(marker) >= len(open_marker) and not info:
            open_marker = None
    return open_marker is None


def test_long_code_block_is_closed_and_reopened() -> None:
    code = "\n".join(f"print({i})" for i in range(400))
    text = f"Here:\n\n```python\n{code}\n```\n\nDone."
    parts = split_message(text, 2000)
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= 2000
        assert _balanced(part), part[-50:]
    assert all(p.startswith("```python") for p in parts[1:-1])
    assert parts[-1].endswith("Done.")


def test_prefers_paragraph_boundaries() -> None:
    para = "word " * 150
    text = "\n\n".join([para.strip()] * 6)
    parts = split_message(text, 1000)
    for part in parts:
        assert part == part.strip()
        assert not part.startswith("word word word word"[:0] + " ")


def test_footer_goes_on_last_part() -> None:
    parts = split_with_footer("a" * 100, "FOOTER", 3500)
    assert parts == ["a" * 100 + "\n\nFOOTER"]
    parts = split_with_footer("x " * 1990, "FOOTER", 2000)
    assert parts[-1].endswith("FOOTER")
    assert all(len(p) <= 2000 for p in parts)


line = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=300),
    st.sampled_from(["```", "```python", "```js", "", "~~~"]),
)


@settings(max_examples=300)
@given(st.lists(line, max_size=80), st.sampled_from([40, 100, 2000, 3500]))
def test_split_respects_limit_and_fences(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    parts = split_message(text, limit)
    for part in parts:
        assert len(part) <= limit
    # A block left open by the text itself may stay open only in the last part.
    for part in parts[:-1]:
        assert _balanced(part)

    # No content is lost: every non-fence character of the text is in the output in order.
    def strip(s: str) -> str:
        return re.sub(r"\s+", "", re.sub(r"(?m)^ {0,3}(`{3,}|~{3,}).*$", "", s))

    assert strip("\n".join(parts)) == strip(text)
