"""The governance grammar: /budget scopes, /prompt, /access, /audit, /costs me, channel
defaults, and user references on every platform (SPEC §1, §2)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import commands as c
from bot.core import people
from bot.core.errors import UsageError
from bot.core.replies import Invocation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/budget set 5 --user <@U123>", c.BudgetSet(Decimal(5), user="U123")),
        ("/budget set 5 --user <@U123|bob>", c.BudgetSet(Decimal(5), user="U123")),
        # Slack escapes display names, which may hold spaces.
        ("/budget set 5 --user <@U123|Bob Smith>", c.BudgetSet(Decimal(5), user="U123")),
        ("/budget set 5 --user <@!42>", c.BudgetSet(Decimal(5), user="42")),
        ("/budget set 5 --user=<@42>", c.BudgetSet(Decimal(5), user="42")),
        ("/budget set 5 --user bob", c.BudgetSet(Decimal(5), user="bob")),
        ("/budget set 5 --user @bob", c.BudgetSet(Decimal(5), user="bob")),
        # A flag after an amount is fine, and before it too (no free text in /budget).
        ("/budget set --user bob 5", c.BudgetSet(Decimal(5), user="bob")),
        ("/budget set 2 --each-user", c.BudgetSet(Decimal(2), each_user=True)),
        ("/budget clear --user <@U1>", c.BudgetClear(user="U1")),
        ("/budget clear --each-user", c.BudgetClear(each_user=True)),
        ("/costs me", c.Costs("month", "me")),
        ("/costs me week", c.Costs("week", "me")),
        ("/models default a/b --channel", c.ModelsDefault("a/b", channel=True)),
        ("/models default --channel a/b", c.ModelsDefault("a/b", channel=True)),
        ("/models default clear --channel", c.ModelsDefault(None, channel=True)),
        ("/prompt", c.PromptShow()),
        ("/prompt show", c.PromptShow()),
        ("/prompt set Be brief.", c.PromptSet("Be brief.")),
        ("/prompt set --channel Be brief.", c.PromptSet("Be brief.", channel=True)),
        # After free text a flag is part of the text.
        ("/prompt set Be brief --channel", c.PromptSet("Be brief --channel")),
        (
            "/prompt set --channel  Line one.\n  Line two.",
            c.PromptSet("Line one.\n  Line two.", True),
        ),
        ("/prompt clear", c.PromptClear()),
        ("/prompt clear --channel", c.PromptClear(channel=True)),
        ("/access", c.AccessShow()),
        ("/access channel off", c.AccessChannel(on=False)),
        ("/access channel ON", c.AccessChannel(on=True)),
        ("/access user <@U9|eve> off", c.AccessUser("U9", on=False)),
        ("/access user eve on", c.AccessUser("eve", on=True)),
        ("/audit", c.AuditShow(10)),
        ("/audit 3", c.AuditShow(3)),
        ("/audit 50", c.AuditShow(50)),
        ("/routerbot audit 5", c.AuditShow(5)),
    ],
)
def test_parses(text: str, expected: c.Command) -> None:
    assert c.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/budget set 5 --user",
        "/budget set 5 --user <#C1>",
        "/budget set 5 --user a --user b",
        "/budget set 5 --channel --each-user",
        "/budget set 5 --channel --user bob",
        "/budget set 5 --everyone",
        "/budget --each-user",
        "/models default --channel",
        "/prompt set",
        "/prompt set --channel",
        "/prompt frobnicate",
        "/prompt clear now",
        "/prompt set " + "x" * 8001,
        "/access channel",
        "/access channel maybe",
        "/access user on",
        "/access everyone off",
        "/audit 0",
        "/audit 51",
        "/audit ten",
        "/audit ²",
    ],
)
def test_rejects_with_usage(text: str) -> None:
    with pytest.raises(UsageError):
        c.parse(text)


@given(st.text(min_size=1, max_size=300).filter(lambda t: t.strip()))
def test_a_prompt_keeps_its_text(text: str) -> None:
    try:
        parsed = c.parse(f"/prompt set --channel {text}")
    except UsageError:
        return  # too long, or only flags
    assert isinstance(parsed, c.PromptSet)
    assert parsed.text in text


SLACK = Invocation("slack", "T1", "C1", "U1")
DISCORD = Invocation("discord", "1", "2", "3")
CONSOLE = Invocation("console", "acme", "console", "alice")


@pytest.mark.parametrize(
    ("ctx", "ref", "ok"),
    [
        (SLACK, "U123ABC", True),
        (SLACK, "W0123", True),
        (SLACK, "bob", False),
        (DISCORD, "123456789012345678", True),
        (DISCORD, "bob", False),
        (CONSOLE, "bob", True),
        (CONSOLE, "bob.smith", True),
    ],
)
def test_user_references_per_platform(ctx: Invocation, ref: str, ok: bool) -> None:
    if ok:
        assert people.user_id(ctx, ref) == ref
    else:
        with pytest.raises(UsageError, match="is not a"):
            people.user_id(ctx, ref)
