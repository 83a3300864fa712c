"""The flags of ``/chat`` (SPEC §2, §9): ``--model <id>``, ``--web``, ``--effort <level>``.

Flags come before the prompt (``--`` ends them); a trailing ``--model <id>`` is accepted too,
as people type it after the question. The prompt keeps its own spacing. Files are not part of
the grammar: front-ends attach what the platform delivered with the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import Effort
from bot.core.errors import UsageError

__all__ = ["CHAT_USAGE", "EFFORTS", "ChatFlags", "chat_flags"]

CHAT_USAGE = "Usage: /chat [--model <id>] [--web] [--effort low|medium|high] <prompt>"
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class ChatFlags:
    prompt: str
    model: str | None = None
    web: bool = False
    effort: Effort | None = None


def _usage(problem: str) -> UsageError:
    return UsageError(f"{problem} {CHAT_USAGE}")


def _effort(word: str) -> Effort:
    for effort in EFFORTS:
        if word.lower() == effort:
            return effort
    raise _usage("--effort is low, medium or high.")


def chat_flags(rest: str) -> ChatFlags:
    """Parse what follows ``/chat``; raises UsageError (with the usage) when malformed. The
    model id's form is the caller's to check."""
    tokens = rest.split()
    model: str | None = None
    web = False
    effort: Effort | None = None
    text = rest.strip()
    while tokens and tokens[0].startswith("-"):
        flag = tokens[0]
        if flag == "--":
            text = text[2:].strip()
            tokens = tokens[1:]
            break
        name, eq, value = flag.partition("=")
        consumed = 1
        if name == "--web" and not eq:
            if web:
                raise _usage("Give --web once.")
            web = True
        elif name == "--effort":
            if effort is not None:
                raise _usage("Give --effort once.")
            if not eq:
                value, consumed = (tokens[1] if len(tokens) > 1 else ""), 2
            effort = _effort(value)
        elif name in ("--model", "-m"):
            if model is not None:
                raise _usage("Give --model once.")
            if not eq:
                value, consumed = (tokens[1] if len(tokens) > 1 else ""), 2
            if not value:
                raise _usage("--model needs a model id.")
            model = value
        else:
            raise _usage(f"Unknown option `{name[:30]}`.")
        # Drop the consumed tokens from the raw text, keeping the prompt's own spacing.
        for token in tokens[:consumed]:
            text = text[text.index(token) + len(token) :].lstrip()
        tokens = tokens[consumed:]
    if model is None and len(tokens) >= 3 and tokens[-2] in ("--model", "-m"):
        model = tokens[-1]
        text = text[: text.rindex(tokens[-2])].rstrip()
    if not text:
        raise _usage("The prompt is empty.")
    return ChatFlags(text, model, web, effort)
