"""The ``/apikey`` modal: the key is pasted into a form, so it never appears in any message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adapters.registry import DEFAULT_PROVIDER, find_provider
from bot.core.text import clean_key, looks_like_key

CALLBACK_ID = "routerbot_apikey"
BLOCK_ID = "key"
ACTION_ID = "key"


@dataclass(frozen=True, slots=True)
class ModalOrigin:
    """Carried through the modal in ``private_metadata``: where to confirm the result."""

    channel_id: str
    response_url: str | None
    provider: str | None

    def dump(self) -> str:
        return json.dumps(
            {"c": self.channel_id, "r": self.response_url, "p": self.provider},
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, raw: str | None) -> ModalOrigin:
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(str(data.get("c") or ""), data.get("r") or None, data.get("p") or None)


def key_modal(origin: ModalOrigin) -> dict[str, Any]:
    provider = (find_provider(origin.provider) or DEFAULT_PROVIDER).display_name
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": origin.dump(),
        "title": {"type": "plain_text", "text": "routerbot API key"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": BLOCK_ID,
                "label": {"type": "plain_text", "text": f"{provider} API key"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ACTION_ID,
                    "placeholder": {"type": "plain_text", "text": "sk-or-v1-…"},
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "The key is checked with the provider, stored encrypted, and "
                        "never shown again; only a masked form is confirmed to you.",
                    }
                ],
            },
        ],
    }


def submitted_key(view: dict[str, Any]) -> str:
    values = view.get("state", {}).get("values", {})
    value = values.get(BLOCK_ID, {}).get(ACTION_ID, {}).get("value")
    return clean_key(str(value or ""))


def key_problem(key: str) -> str | None:
    """A quick check done before the ack (no I/O), shown inline in the form."""
    if not key:
        return "Paste the API key."
    if not looks_like_key(key):
        return "That does not look like an API key."
    return None
