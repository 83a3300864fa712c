"""What Slack sends, read into plain values: slash commands, messages, and what they mean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.text import clean_text
from bot.slack_app.text import unescape


def anchor(channel: str, thread_ts: str) -> str:
    return f"slack:{channel}:{thread_ts}"


def slack_user(user_id: str) -> str:
    return f"<@{user_id}>"


def slack_channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


@dataclass(frozen=True, slots=True)
class SlashCommand:
    team_id: str
    channel_id: str
    user_id: str
    word: str
    text: str
    trigger_id: str
    response_url: str
    team_domain: str | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SlashCommand:
        return cls(
            team_id=str(body.get("team_id") or body.get("enterprise_id") or ""),
            channel_id=str(body.get("channel_id", "")),
            user_id=str(body.get("user_id", "")),
            word=clean_text(str(body.get("command", "/routerbot"))).lstrip("/").lower(),
            text=unescape(clean_text(str(body.get("text", "")))),
            trigger_id=str(body.get("trigger_id", "")),
            response_url=str(body.get("response_url", "")),
            team_domain=clean_text(str(body["team_domain"])) if body.get("team_domain") else None,
        )


def with_clean_text(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its ``text`` cleaned (:func:`~bot.core.text.clean_text`): JSON can carry
    lone surrogates and NULs, which no HTTP client encodes and PostgreSQL does not store."""
    if "text" not in event:
        return event
    return {**event, "text": clean_text(str(event["text"] or ""))}


def is_human_message(event: dict[str, Any], bot_user_id: str | None) -> bool:
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    if event.get("subtype") not in (None, "thread_broadcast", "file_share"):
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id
