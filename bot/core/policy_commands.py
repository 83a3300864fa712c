"""The grammar of the governance commands (SPEC §2): ``/budget`` and its scopes, ``/prompt``,
``/access``, ``/audit``, and how any command names a person (SPEC §1 "user reference").

Part of :mod:`bot.core.commands` (which re-exports these names and routes ``/budget``,
``/prompt``, ``/access`` and ``/audit`` here). Flags come before free text: in
``/prompt set --channel Be brief.`` the flag is read, in ``/prompt set Be brief --channel``
it is part of the prompt. ``/budget`` has no free text, so its flags go anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from bot.core.errors import UsageError

#: Longer than any system prompt worth sending, short enough to keep requests small.
MAX_PROMPT_CHARS = 8000
MAX_AUDIT_ROWS = 50
DEFAULT_AUDIT_ROWS = 10

USAGE = {
    "budget": "Usage: /budget [set <usd> | clear] [--channel | --user <user> | --each-user]",
    "prompt": "Usage: /prompt · /prompt set [--channel] <text> · /prompt clear [--channel]",
    "access": "Usage: /access · /access channel on|off · /access user <user> on|off",
    "audit": f"Usage: /audit [n] (the latest n admin changes, at most {MAX_AUDIT_ROWS})",
}

# Slack ``<@U123>`` / ``<@U123|name>`` (the manifest escapes names), Discord ``<@123>`` or
# ``<@!123>``; then a plain name (the console), optionally typed with an ``@``.
_MENTION = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_PLAIN_NAME = re.compile(r"^@?([\w.\-]{1,64})$")
#: A token: a whole ``<…>`` mention (a Slack name may hold spaces), or a run of non-spaces.
_TOKEN = re.compile(r"<[^>]*>|\S+")


@dataclass(frozen=True, slots=True)
class BudgetShow:
    pass


@dataclass(frozen=True, slots=True)
class BudgetSet:
    """The scope: the workspace, this ``channel``, one ``user`` (their platform id as the
    reference gave it), or ``each_user`` (everyone without a limit of their own)."""

    amount_usd: Decimal
    channel: bool = False
    user: str | None = None
    each_user: bool = False


@dataclass(frozen=True, slots=True)
class BudgetClear:
    channel: bool = False
    user: str | None = None
    each_user: bool = False


@dataclass(frozen=True, slots=True)
class PromptShow:
    pass


@dataclass(frozen=True, slots=True)
class PromptSet:
    text: str
    channel: bool = False


@dataclass(frozen=True, slots=True)
class PromptClear:
    channel: bool = False


@dataclass(frozen=True, slots=True)
class AccessShow:
    pass


@dataclass(frozen=True, slots=True)
class AccessChannel:
    """Chats on (``on``) or off in the channel where the command was typed."""

    on: bool


@dataclass(frozen=True, slots=True)
class AccessUser:
    """``user``: the person's platform id as the reference gave it (checked per platform)."""

    user: str
    on: bool


@dataclass(frozen=True, slots=True)
class AuditShow:
    count: int = DEFAULT_AUDIT_ROWS


PolicyCommand = (
    BudgetShow
    | BudgetSet
    | BudgetClear
    | PromptShow
    | PromptSet
    | PromptClear
    | AccessShow
    | AccessChannel
    | AccessUser
    | AuditShow
)


def _usage(word: str, problem: str | None = None) -> UsageError:
    text = USAGE[word]
    return UsageError(f"{problem} {text}" if problem else text)


def tokens(text: str) -> list[str]:
    """Split on spaces, keeping a ``<@U123|some name>`` mention whole."""
    return _TOKEN.findall(text)


def parse_user_ref(token: str) -> str:
    """The person a reference names, as the platform's id (``<@U123|bob>`` → ``U123``) or,
    for a plain name, the name (``@bob`` → ``bob``). Which of those a platform accepts is
    checked by :func:`bot.core.people.user_id`."""
    mention = _MENTION.match(token)
    if mention:
        return mention.group(1)
    plain = _PLAIN_NAME.match(token)
    if plain:
        return plain.group(1)
    shown = token if len(token) <= 40 else token[:37] + "..."
    raise UsageError(f"`{shown}` does not name a person; mention them, e.g. @name.")


def _budget_scope(words: list[str]) -> tuple[list[str], bool, str | None, bool]:
    """The scope flags anywhere among ``words`` (no free text here), and the other words."""
    rest: list[str] = []
    channel, user, each_user = False, None, False
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if word == "--channel":
            channel = True
        elif word == "--each-user":
            each_user = True
        elif name == "--user":
            if not eq:
                if i + 1 >= len(words):
                    raise _usage("budget", "--user needs a person, e.g. --user @name.")
                i += 1
                value = words[i]
            if user is not None:
                raise _usage("budget", "Give --user once.")
            user = parse_user_ref(value)
        elif word.startswith("--"):
            raise _usage("budget", f"Unknown option `{name[:30]}`.")
        else:
            rest.append(word)
        i += 1
    if channel + (user is not None) + each_user > 1:
        raise _usage("budget", "Give one of --channel, --user and --each-user.")
    return rest, channel, user, each_user


def parse_budget(rest: str, parse_usd: Callable[[str], Decimal]) -> PolicyCommand:
    """``/budget``; ``parse_usd`` reads the amount (``bot.core.commands.parse_usd``)."""
    words, channel, user, each_user = _budget_scope(tokens(rest))
    scoped = channel or user is not None or each_user
    if not words:
        if scoped:
            raise _usage("budget")
        return BudgetShow()
    sub = words[0].lower()
    if sub == "set" and len(words) == 2:
        return BudgetSet(parse_usd(words[1]), channel=channel, user=user, each_user=each_user)
    if sub == "clear" and len(words) == 1:
        return BudgetClear(channel=channel, user=user, each_user=each_user)
    if sub in ("show", "status") and len(words) == 1 and not scoped:
        return BudgetShow()
    raise _usage("budget")


def _split_first(text: str) -> tuple[str, str]:
    """The first word and the rest (its own spacing and line breaks kept)."""
    parts = text.strip().split(maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else ((parts[0], "") if parts else ("", ""))


def _leading_flags(text: str, allowed: tuple[str, ...]) -> tuple[set[str], str]:
    """The flags before the free text, and that text."""
    flags: set[str] = set()
    word, after = _split_first(text)
    while word in allowed:
        flags.add(word)
        text = after
        word, after = _split_first(text)
    return flags, text.strip()


def parse_prompt(rest: str) -> PolicyCommand:
    sub, after = _split_first(rest)
    match sub.lower():
        case "" | "show":
            if after:
                raise _usage("prompt")
            return PromptShow()
        case "set":
            flags, text = _leading_flags(after, ("--channel",))
            if not text:
                raise _usage("prompt", "The prompt is empty.")
            if len(text) > MAX_PROMPT_CHARS:
                raise _usage(
                    "prompt", f"A system prompt has at most {MAX_PROMPT_CHARS:,} characters."
                )
            return PromptSet(text, channel="--channel" in flags)
        case "clear":
            words = after.split()
            if any(w != "--channel" for w in words):
                raise _usage("prompt")
            return PromptClear(channel="--channel" in words)
    raise _usage("prompt", f"Unknown subcommand `{sub[:30]}`.")


def _switch(word: str) -> bool:
    lowered = word.lower()
    if lowered in ("on", "off"):
        return lowered == "on"
    raise _usage("access", "Say on or off.")


def parse_access(rest: str) -> PolicyCommand:
    words = tokens(rest)
    if not words or (len(words) == 1 and words[0].lower() == "show"):
        return AccessShow()
    sub = words[0].lower()
    if sub == "channel" and len(words) == 2:
        return AccessChannel(_switch(words[1]))
    if sub == "user" and len(words) == 3:
        return AccessUser(parse_user_ref(words[1]), _switch(words[2]))
    raise _usage("access")


def parse_audit(rest: str) -> PolicyCommand:
    words = rest.split()
    if not words:
        return AuditShow()
    # isascii: str.isdigit() also accepts digits int() cannot read ("²").
    count = words[0] if len(words) == 1 and words[0].isascii() and words[0].isdigit() else "0"
    if 1 <= int(count) <= MAX_AUDIT_ROWS:
        return AuditShow(int(count))
    raise _usage("audit")
