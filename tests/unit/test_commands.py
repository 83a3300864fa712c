"""The command grammar: every front-end's text goes through this parser."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import commands as c
from bot.core.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/models", c.ModelsList()),
        ("/models list", c.ModelsList()),
        ("/MODELS LIST", c.ModelsList()),
        ("/models recommended", c.ModelsRecommended()),
        ("/models add openai/gpt-4o-mini", c.ModelsAdd("openai/gpt-4o-mini")),
        (
            "/models add meta-llama/llama-3.1-8b-instruct:free",
            c.ModelsAdd("meta-llama/llama-3.1-8b-instruct:free"),
        ),
        (
            "/models add accounts/fireworks/models/deepseek-v3",
            c.ModelsAdd("accounts/fireworks/models/deepseek-v3"),
        ),
        ("/models remove a/b", c.ModelsRemove("a/b")),
        ("/models default a/b", c.ModelsDefault("a/b")),
        ("/chat hello", c.Chat("hello")),
        ("chat hello", c.Chat("hello")),
        ("/chat --model a/b what's up?", c.Chat("what's up?", "a/b")),
        ("/chat --model=a/b hi", c.Chat("hi", "a/b")),
        ("/chat -m a/b hi", c.Chat("hi", "a/b")),
        ("/chat explain this --model a/b", c.Chat("explain this", "a/b")),
        ("/chat -- --model is a flag", c.Chat("--model is a flag")),
        ("/chat  keep   inner  spacing", c.Chat("keep   inner  spacing")),
        ("/apikey", c.ApiKeyModal()),
        ("/apikey set", c.ApiKeyModal()),
        ("/apikey status", c.ApiKeyStatus()),
        ("/apikey clear", c.ApiKeyClear()),
        ("/apikey clear --provider fireworks", c.ApiKeyClear("fireworks")),
        ("/costs", c.Costs("month", "channel")),
        ("/costs today", c.Costs("today", "channel")),
        ("/costs 30d", c.Costs("30d", "channel")),
        ("/costs workspace", c.Costs("month", "workspace")),
        ("/costs workspace all", c.Costs("all", "workspace")),
        ("/budget", c.BudgetShow()),
        ("/budget set 50", c.BudgetSet(Decimal("50"))),
        ("/budget set $12.50 --channel", c.BudgetSet(Decimal("12.50"), channel=True)),
        ("/budget clear --channel", c.BudgetClear(channel=True)),
        ("/help", c.Help()),
        ("/routerbot", c.Help()),
        ("/routerbot models", c.ModelsList()),
    ],
)
def test_parses(text: str, expected: c.Command) -> None:
    assert c.parse(text) == expected


def test_apikey_set_keeps_the_key_secret() -> None:
    cmd = c.parse("/apikey set sk-or-v1-0123456789abcdef")
    assert isinstance(cmd, c.ApiKeySet)
    assert cmd.key.get_secret_value() == "sk-or-v1-0123456789abcdef"
    assert "0123456789" not in repr(cmd)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/nope",
        "/models add",
        "/models add not an id",
        "/models add -rf",
        "/models add `x`",
        "/models add a/b c/d",
        "/models frobnicate",
        "/chat",
        "/chat --model",
        "/chat --model a/b",
        "/chat --temperature 2 hi",
        "/chat --model b@d! hi",
        "/costs yesterday",
        "/costs today extra",
        "/budget set -5",
        "/budget set abc",
        "/budget set 0",
        "/budget set 1.234",
        "/budget set nan",
        "/budget frob",
        "/apikey set a b",
    ],
)
def test_rejects_with_usage(text: str) -> None:
    with pytest.raises(UsageError) as info:
        c.parse(text)
    message = info.value.message
    assert message and "\n" not in message


def test_misplaced_key_is_never_echoed() -> None:
    with pytest.raises(UsageError) as info:
        c.parse("/apikey sk-or-v1-secretsecretsecret")
    assert "secret" not in info.value.message


@given(st.text(max_size=200))
def test_parser_never_crashes(text: str) -> None:
    try:
        result = c.parse(text)
    except UsageError as exc:
        assert exc.message.strip()
        assert "\n" not in exc.message
    else:
        assert isinstance(result, c.Command)


@given(st.sampled_from(list(c.COMMAND_WORDS)), st.text(max_size=120))
def test_every_command_word_with_any_tail(word: str, tail: str) -> None:
    try:
        c.parse(f"/{word} {tail}")
    except UsageError as exc:
        assert "\n" not in exc.message


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=200,
    ).filter(lambda s: s.strip() and not s.strip().startswith("-"))
)
def test_chat_prompt_round_trips(prompt: str) -> None:
    parsed = c.parse(f"/chat {prompt}")
    assert isinstance(parsed, c.Chat)
    if parsed.model is None:
        assert parsed.prompt == prompt.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/models search sonnet", c.ModelsSearch(("sonnet",))),
        ("/models search  Claude   sonnet ", c.ModelsSearch(("Claude", "sonnet"))),
        ("/models find gpt", c.ModelsSearch(("gpt",))),
        ("/models info openai/gpt-5-mini", c.ModelsInfo("openai/gpt-5-mini")),
        (
            "/models add ~anthropic/claude-sonnet-latest",
            c.ModelsAdd("~anthropic/claude-sonnet-latest"),
        ),
        ("/models add openai/gpt-5-mini:nitro", c.ModelsAdd("openai/gpt-5-mini:nitro")),
        (
            "/models default deepseek/deepseek-v4-flash:floor",
            c.ModelsDefault("deepseek/deepseek-v4-flash:floor"),
        ),
        (
            "/chat --model ~google/gemini-flash-latest hi",
            c.Chat("hi", "~google/gemini-flash-latest"),
        ),
        ("/routerbot models search llama free", c.ModelsSearch(("llama", "free"))),
    ],
)
def test_parses_catalogue_commands(text: str, expected: c.Command) -> None:
    assert c.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/models search", "needs a word"),
        ("/models search " + " ".join(["w"] * 9), "up to 8 short words"),
        ("/models info", "exactly one model id"),
        ("/models info a/b c/d", "exactly one model id"),
        ("/models info ~~", "is not a model id"),
    ],
)
def test_catalogue_command_mistakes(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as info:
        c.parse(text)
    assert problem in info.value.message
