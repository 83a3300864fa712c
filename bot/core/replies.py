"""Neutral requests and replies: what front-ends hand to the core and get back to render."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bot.core.charts import SpendChart
from bot.core.chat.sources import Source
from bot.core.pricing import ChatCost


def _plain_user(user_id: str) -> str:
    return user_id


def _plain_channel(channel_id: str) -> str:
    return f"`{channel_id}`"


@dataclass(frozen=True, slots=True)
class Invocation:
    """Who asked, where. ``channel_id`` is already the parent channel for threads."""

    platform: str
    workspace_id: str
    channel_id: str
    user_id: str
    is_admin: bool = False
    workspace_name: str | None = None
    #: Renders a user id in the platform's idiom (``<@U123>``); plain id by default.
    format_user: Callable[[str], str] = field(default=_plain_user, compare=False, repr=False)
    #: Renders a channel id in the platform's idiom (``<#C123>``); quoted id by default.
    format_channel: Callable[[str], str] = field(default=_plain_channel, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TextReply:
    text: str
    private: bool = False


@dataclass(frozen=True, slots=True)
class CostsReply(TextReply):
    """``/costs``: the text, and the chart of spend per day (None when nothing was spent).
    A ``TextReply``, so a front-end that draws no charts shows the text alone."""

    chart: SpendChart | None = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A one-sentence error for the user; never a traceback."""

    text: str
    private: bool = False


@dataclass(frozen=True, slots=True)
class KeyPromptReply:
    """Ask the admin for a key privately: a modal on Slack/Discord, a hidden prompt on a TTY."""

    provider: str | None = None


@dataclass(frozen=True, slots=True)
class ChatStarted:
    model: str


@dataclass(frozen=True, slots=True)
class ChatDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ChatCompleted:
    """The end of a chat. ``text`` is the whole answer (partial when ``cut_off``)."""

    text: str
    footer: str
    model: str
    conversation_id: int
    cost: ChatCost
    cut_off: bool = False
    #: Shown after the answer: why it was cut off, a budget notice.
    notices: tuple[str, ...] = ()
    #: The web pages a searching answer cites, listed under it (links, previews off).
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatFailed:
    """The chat failed before any text: one sentence, and nothing was charged."""

    text: str


Audience = Literal["channel", "asker", "direct"]


@dataclass(frozen=True, slots=True)
class Notice:
    """A message of its own, after a chat's answer: posted in the ``channel``, shown privately
    to the ``asker``, or sent as a ``direct`` message to ``user_id`` (an admin who set a
    limit). Front-ends deliver it; a notice that cannot be delivered is logged, not fatal."""

    text: str
    audience: Audience
    user_id: str | None = None


Reply = (
    TextReply
    | ErrorReply
    | KeyPromptReply
    | ChatStarted
    | ChatDelta
    | ChatCompleted
    | ChatFailed
    | Notice
)
