"""Hostile text for the property tests of every front-end's parser, and what a good answer
to one command looks like (one reply, or one chat: started, text, then done or failed)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from bot.core import commands as c
from bot.core.dispatch import DATABASE_UNAVAILABLE, INTERNAL_ERROR
from bot.core.errors import UsageError
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    ErrorReply,
    KeyPromptReply,
    Reply,
    TextReply,
)

# Every code point, lone surrogates included (hypothesis leaves them out by default).
any_unicode = st.text(st.characters(codec=None, categories=None), max_size=40)
# Bytes as Python hands undecodable input over (a surrogateescape stdin, os.environ).
escaped_bytes = st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape"))
nasty = st.sampled_from(
    [
        "\x00",
        "\u200b",
        "\ufeff",
        "caf\udce9",
        "\ud83d\ude00",
        "\ud800",
        "\x1b[2J",
        "\r\n",
        "\x85",
        "5,50",
        "0,5",
        "1,000",
        "$5.50",
        "\uff15",
        "1e3",
        "--model",
        "--channel",
        "--provider",
        "fireworks",
        "-m",
        "--",
        "&lt;",
        "<@U1>",
        "a/b",
        "sk-or-v1-test\u200b",
        "\u201csk-or-v1-x\u201d",
        "`",
    ]
)
hostile = st.one_of(
    any_unicode,
    escaped_bytes,
    nasty,
    st.lists(st.one_of(nasty, any_unicode), max_size=4).map(" ".join),
)
words = st.sampled_from(
    ["/models", "/chat", "/apikey", "/costs", "/budget", "/help", "/routerbot", "models", "/BUDGET"]
)
subs = st.sampled_from(
    ["", "list", "recommended", "add", "remove", "default", "set", "clear", "status", "workspace"]
)
# A command of the grammar with hostile arguments.
command_line = st.builds(
    lambda word, sub, args: " ".join(part for part in (word, sub, *args) if part),
    words,
    subs,
    st.lists(hostile, max_size=3),
)
# Any text at all, or a command of the grammar.
typed = st.one_of(hostile, command_line)

FAILURES = (INTERNAL_ERROR, DATABASE_UNAVAILABLE, "could not read")


def answer_text(replies: Sequence[Reply]) -> str:
    """The final text of one command's replies, after checking they are one answer."""
    if len(replies) == 1 and isinstance(replies[0], TextReply | ErrorReply | ChatFailed):
        text = replies[0].text
    elif len(replies) == 1 and isinstance(replies[0], KeyPromptReply):
        return ""
    else:
        assert replies and isinstance(replies[0], ChatStarted), replies
        assert all(isinstance(r, ChatDelta) for r in replies[1:-1]), replies
        last = replies[-1]
        assert isinstance(last, ChatCompleted | ChatFailed), replies
        text = last.text
    assert not any(failure in text for failure in FAILURES), text
    return text


def expected_prompt(cleaned_line: str) -> str | None:
    """What a cleaned ``/chat …`` line sends the provider by the grammar's own reading: the
    prompt, or None for a usage error. (A line that names a model is not a plain chat;
    callers skip it.)"""
    try:
        command = c.parse(cleaned_line)
    except UsageError:
        return None
    assert isinstance(command, c.Chat)
    return command.prompt if command.model is None else NAMES_A_MODEL


NAMES_A_MODEL = "\0model"
