"""Budget amounts: a comma never multiplies a limit; what is refused says how to write it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import commands as c
from bot.core.errors import UsageError


@pytest.mark.parametrize(
    ("text", "usd"),
    [
        ("5", "5"),
        ("5.50", "5.50"),
        ("$5.50", "5.50"),
        ("$ 5.50", "5.50"),
        ("0.5", "0.50"),
        (".5", "0.50"),
        ("5.", "5"),
        ("1000000", "1000000"),
        ("$1,234.50", "1234.50"),  # grouped thousands before a decimal point: unambiguous
        ("12,345,678.00", None),  # over the maximum, refused for that reason
    ],
)
def test_accepted_amounts(text: str, usd: str | None) -> None:
    if usd is None:
        with pytest.raises(UsageError, match=r"at most \$1,000,000"):
            c.parse_usd(text)
        return
    assert c.parse_usd(text) == Decimal(usd)


@pytest.mark.parametrize(
    "text",
    ["5,50", "0,5", "1,000", "1,5.00", "12,34.50", "1,234", ",5", "5,", "1.234,50", "5,50$"],
)
def test_an_ambiguous_comma_is_refused_showing_the_accepted_form(text: str) -> None:
    with pytest.raises(UsageError) as refused:
        c.parse_usd(text)
    message = refused.value.message
    assert f"`{text}`" in message
    assert "5.50" in message and "comma" in message


@pytest.mark.parametrize("text", ["1e3", "Infinity", "NaN", "\u0665", "\uff15", "5 USD", "five"])
def test_only_plain_decimal_digits_are_amounts(text: str) -> None:
    with pytest.raises(UsageError, match="is not an amount in USD"):
        c.parse_usd(text)


@pytest.mark.parametrize(("text", "problem"), [("0", "more than $0"), ("-5", "more than $0")])
def test_amounts_out_of_range(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem.replace("$", r"\$")):
        c.parse_usd(text)


def test_budget_set_with_a_decimal_comma_sets_nothing() -> None:
    with pytest.raises(UsageError, match=r"e\.g\. 5\.50"):
        c.parse("/budget set 5,50")
    assert c.parse("/budget set $5.50 --channel") == c.BudgetSet(Decimal("5.50"), channel=True)


@given(st.text(max_size=20))
def test_an_accepted_amount_is_the_digits_written(text: str) -> None:
    """Whatever is accepted reads the same with every comma and dollar sign taken out."""
    try:
        amount = c.parse_usd(text)
    except UsageError:
        return
    digits = text.strip().removeprefix("$").strip().replace(",", "")
    assert amount == Decimal(digits)
    assert "," not in text or "." in text
