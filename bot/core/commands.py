"""The command grammar of SPEC §2: one parser for every front-end.

Front-ends that receive free text (Slack slash commands, the console) call :func:`parse`; those
with typed options (Discord) build the command dataclasses directly. Either way the result goes
to :class:`bot.core.dispatch.Dispatcher`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import SecretStr

from adapters.base import Effort
from adapters.registry import provider_names
from bot.core.chat.attachments import Attachment
from bot.core.chat.grammar import chat_flags
from bot.core.errors import UsageError
from bot.core.help import HELP_TEXT as HELP_TEXT
from bot.core.help import USAGE as USAGE
from bot.core.help import usage_error
from bot.core.policy_commands import AccessChannel as AccessChannel
from bot.core.policy_commands import AccessShow as AccessShow
from bot.core.policy_commands import AccessUser as AccessUser
from bot.core.policy_commands import AuditShow as AuditShow
from bot.core.policy_commands import BudgetClear as BudgetClear
from bot.core.policy_commands import BudgetSet as BudgetSet
from bot.core.policy_commands import BudgetShow as BudgetShow
from bot.core.policy_commands import (
    PolicyCommand,
    parse_access,
    parse_audit,
    parse_budget,
    parse_prompt,
)
from bot.core.policy_commands import PromptClear as PromptClear
from bot.core.policy_commands import PromptSet as PromptSet
from bot.core.policy_commands import PromptShow as PromptShow
from bot.core.text import clean_key

Period = Literal["today", "week", "month", "30d", "all"]
PERIODS: tuple[Period, ...] = ("today", "week", "month", "30d", "all")

MAX_BUDGET_USD = Decimal(1_000_000)
# ASCII digits with at most one point (Decimal alone would also take 1e3, NaN and other
# scripts' digits). Commas are allowed only as thousands groups before a point.
_PLAIN_AMOUNT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_GROUPED_AMOUNT = re.compile(r"[-+]?[0-9]{1,3}(?:,[0-9]{3})+\.[0-9]*")

# The characters model ids are made of: OpenRouter's author/slug[:variant] and its
# ~author/family-latest aliases, Fireworks' accounts/<acct>/models/<slug>, and local servers'
# free names (llama3.2:3b). Each provider adapter checks its own stricter form on lookup.
MODEL_ID = re.compile(r"^~?[A-Za-z0-9][\w.\-:/@+~]*$")
#: /models search: at most this many words, each at most this long.
MAX_SEARCH_WORDS = 8
MAX_SEARCH_WORD = 60


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class ModelsList:
    pass


@dataclass(frozen=True, slots=True)
class ModelsRecommended:
    pass


@dataclass(frozen=True, slots=True)
class ModelsSearch:
    """Catalogue models whose id or name contains every word."""

    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelsInfo:
    model_id: str


@dataclass(frozen=True, slots=True)
class ModelsAdd:
    model_id: str


@dataclass(frozen=True, slots=True)
class ModelsRemove:
    model_id: str


@dataclass(frozen=True, slots=True)
class ModelsDefault:
    """``model_id`` None clears this channel's default (only with ``channel``)."""

    model_id: str | None
    channel: bool = False


@dataclass(frozen=True, slots=True)
class Chat:
    prompt: str
    model: str | None = None
    #: ``--web``: the model may search the web.
    web: bool = False
    #: ``--effort low|medium|high``: reasoning effort, for models that reason.
    effort: Effort | None = None
    #: Files attached to the message that asks (never from the text grammar: the front-end
    #: downloads them and adds them to the parsed command).
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiKeySet:
    key: SecretStr
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyModal:
    """``/apikey`` alone: the front-end asks for the key privately (modal, hidden prompt)."""

    provider: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyStatus:
    pass


@dataclass(frozen=True, slots=True)
class ApiKeyClear:
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class Costs:
    period: Period = "month"
    #: ``me``: the asker's own spend and limit.
    scope: Literal["channel", "workspace", "me"] = "channel"


Command = (
    Help
    | ModelsList
    | ModelsRecommended
    | ModelsSearch
    | ModelsInfo
    | ModelsAdd
    | ModelsRemove
    | ModelsDefault
    | Chat
    | ApiKeySet
    | ApiKeyModal
    | ApiKeyStatus
    | ApiKeyClear
    | Costs
    | PolicyCommand
)


def _usage(word: str, problem: str | None = None) -> UsageError:
    return usage_error(word, problem)


def validate_model_id(model_id: str) -> str:
    if len(model_id) > 200 or not MODEL_ID.match(model_id):
        shown = model_id if len(model_id) <= 80 else model_id[:77] + "..."
        raise UsageError(
            f"`{shown}` is not a model id; use the form author/slug, e.g. openai/gpt-5-mini."
        )
    return model_id


def _split_first(text: str) -> tuple[str, str]:
    text = text.strip()
    if not text:
        return "", ""
    parts = text.split(maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _parse_models(rest: str) -> Command:
    sub, arg = _split_first(rest)
    sub = sub.lower()
    if sub in ("", "list"):
        if arg:
            raise _usage("models")
        return ModelsList()
    if sub == "recommended":
        if arg:
            raise _usage("models")
        return ModelsRecommended()
    if sub in ("search", "find"):
        return ModelsSearch(_search_words(arg))
    if sub == "info":
        ids = arg.split()
        if len(ids) != 1:
            raise _usage("models", "/models info takes exactly one model id.")
        return ModelsInfo(validate_model_id(ids[0]))
    if sub == "default":
        words = arg.split()
        channel = "--channel" in words
        ids = [w for w in words if w != "--channel"]
        if len(ids) != 1:
            raise _usage("models", "/models default takes exactly one model id.")
        if channel and ids[0].lower() in ("clear", "none"):
            return ModelsDefault(None, channel=True)
        return ModelsDefault(validate_model_id(ids[0]), channel=channel)
    if sub in ("add", "remove", "rm"):
        ids = arg.split()
        if len(ids) != 1:
            raise _usage("models", f"/models {sub} takes exactly one model id.")
        model_id = validate_model_id(ids[0])
        if sub == "add":
            return ModelsAdd(model_id)
        return ModelsRemove(model_id)
    raise _usage("models", f"Unknown subcommand `{sub[:30]}`.")


def _search_words(text: str) -> tuple[str, ...]:
    words = tuple(text.split())
    if not words:
        raise _usage("models", "/models search needs a word to look for, e.g. sonnet.")
    if len(words) > MAX_SEARCH_WORDS or any(len(w) > MAX_SEARCH_WORD for w in words):
        raise _usage("models", f"/models search takes up to {MAX_SEARCH_WORDS} short words.")
    return words


def _parse_chat(rest: str) -> Command:
    flags = chat_flags(rest)
    if flags.model is not None:
        validate_model_id(flags.model)
    return Chat(flags.prompt, flags.model, web=flags.web, effort=flags.effort)


def _parse_apikey(rest: str) -> Command:
    tokens = rest.split()
    provider: str | None = None
    if "--provider" in tokens:
        i = tokens.index("--provider")
        if i + 1 >= len(tokens) or tokens[i + 1].lower() not in provider_names():
            raise _usage("apikey", f"--provider is one of {', '.join(provider_names())}.")
        provider = tokens[i + 1].lower()
        del tokens[i : i + 2]
    if not tokens:
        return ApiKeyModal(provider)
    sub = tokens[0].lower()
    if sub == "set":
        if len(tokens) == 1:
            return ApiKeyModal(provider)
        if len(tokens) != 2:
            raise UsageError(
                "Usage: /apikey set <key> (the key has no spaces); nothing was stored."
            )
        return ApiKeySet(SecretStr(clean_key(tokens[1])), provider)
    if sub == "status" and len(tokens) == 1:
        return ApiKeyStatus()
    if sub == "clear" and len(tokens) == 1:
        return ApiKeyClear(provider)
    # Never echo what followed: it may be a key pasted in the wrong place.
    raise _usage("apikey")


def parse_period(word: str) -> Period:
    word = word.lower()
    aliases: dict[str, Period] = {"day": "today", "7d": "week", "month": "month", "30": "30d"}
    word = aliases.get(word, word)  # type: ignore[assignment]
    for period in PERIODS:
        if word == period:
            return period
    raise _usage("costs", f"Unknown period `{word[:20]}`.")


def _parse_costs(rest: str) -> Command:
    words = [t.lower() for t in rest.split()]
    scope: Literal["channel", "workspace", "me"] = "channel"
    if words and words[0] in ("workspace", "channel", "me"):
        scope = "workspace" if words[0] == "workspace" else "me" if words[0] == "me" else "channel"
        words = words[1:]
    if len(words) > 1:
        raise _usage("costs")
    period = parse_period(words[0]) if words else "month"
    return Costs(period=period, scope=scope)


def parse_usd(text: str) -> Decimal:
    """A limit in USD: ``5``, ``5.50``, ``$5.50``. A comma is read only where it cannot be a
    decimal comma, grouping thousands before a point (``1,234.50``); ``5,50`` is refused with
    the form to use, never read as $550."""
    written = text.strip().removeprefix("$").strip()
    shown = text.strip()[:20]
    if "," in written:
        if not _GROUPED_AMOUNT.fullmatch(written):
            raise _usage(
                "budget",
                f"`{shown}`: write the amount with a point, e.g. 5.50 "
                "(a comma only groups thousands, as in 1,234.50).",
            )
        written = written.replace(",", "")
    if not _PLAIN_AMOUNT.fullmatch(written):
        raise _usage("budget", f"`{shown}` is not an amount in USD.")
    amount = Decimal(written)
    if not amount.is_finite() or amount <= 0 or amount > MAX_BUDGET_USD:
        raise _usage("budget", "The limit must be more than $0 and at most $1,000,000.")
    if amount != amount.quantize(Decimal("0.01")):
        raise _usage("budget", "Give the limit in dollars and cents, e.g. 12.50.")
    return amount


COMMAND_WORDS = (
    "models",
    "chat",
    "apikey",
    "costs",
    "budget",
    "prompt",
    "access",
    "audit",
    "help",
    "routerbot",
)


def parse(text: str) -> Command:
    """Parse ``/word rest`` (the leading slash is optional) into a command.

    Raises :class:`UsageError` with a one-line usage for anything malformed.
    """
    stripped = text.strip()
    if not stripped:
        raise UsageError("Type a command, e.g. /chat hello, or /help.")
    word, rest = _split_first(stripped)
    word = word.lower().removeprefix("/")
    if word == "models":
        return _parse_models(rest)
    if word == "chat":
        return _parse_chat(rest)
    if word == "apikey":
        return _parse_apikey(rest)
    if word == "costs":
        return _parse_costs(rest)
    if word == "budget":
        return parse_budget(rest, parse_usd)
    if word == "prompt":
        return parse_prompt(rest)
    if word == "access":
        return parse_access(rest)
    if word == "audit":
        return parse_audit(rest)
    if word in ("help", "routerbot"):
        sub, _more = _split_first(rest)
        if word == "routerbot" and sub and sub.lower() != "help":
            # `/routerbot models list` and friends: the help command doubles as a prefix.
            return parse(rest)
        return Help()
    shown = word[:30]
    raise UsageError(f"Unknown command `/{shown}`; try /help.")
