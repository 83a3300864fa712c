"""Slack's text conventions: the three escaped characters, mentions, quoting the question."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.core.chat.sources import Source

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def unescape(text: str) -> str:
    """What the user typed: Slack sends ``&``, ``<`` and ``>`` escaped in command and event text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Text safe to post: model output can contain ``<!channel>``, which would ping everyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """The message without the bot's own ``<@U…>`` mention(s)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def quote(text: str, limit: int = 300) -> str:
    """The question as a Slack block quote, shortened so the answer keeps most of the room."""
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "\n".join(f"&gt; {line}" if line else "&gt;" for line in escape(text).splitlines())


def has_user_mention(text: str) -> bool:
    return bool(_MENTION.search(text))


def _link_url(url: str) -> str:
    # A "|", "<", ">", "(", ")" in a URL would end the link early in one markup or the other.
    for char, code in (("|", "%7C"), ("<", "%3C"), (">", "%3E"), ("(", "%28"), (")", "%29")):
        url = url.replace(char, code)
    return url.replace("&", "&amp;")


def source_links(sources: Sequence[Source], *, markdown: bool = False) -> str:
    """An answer's sources, one link a line: Slack markup ``<url|title>`` for ``text``, or
    ``[title](url)`` for ``markdown_text`` (native streams), with Slack's escapes. Answers are
    posted with link previews off, so the list never unfurls."""
    if not sources:
        return ""
    lines = ["**Sources**" if markdown else "*Sources*"]
    for number, source in enumerate(sources, start=1):
        url = _link_url(source.url)
        if markdown:
            title = escape(re.sub(r"([\[\]\\`*_])", r"\\\1", source.title))
            lines.append(f"{number}. [{title}]({url})")
        else:
            lines.append(f"{number}. <{url}|{escape(source.title.replace('|', '¦'))}>")
    return "\n".join(lines)
