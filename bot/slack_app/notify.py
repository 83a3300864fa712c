"""Where short replies go: a slash command's ``response_url``, or ``chat.postEphemeral``.

``response_url`` works in channels the bot has not joined and needs no Web API call; events
have none, so their private replies are ephemeral messages and public ones thread replies.
"""

from __future__ import annotations

import logging
from typing import Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.core.format import SLACK_MESSAGE_LIMIT, split_message
from bot.slack_app.errors import error_code

log = logging.getLogger(__name__)

#: ``response_url`` takes five posts; keep one spare for a late error.
_MAX_RESPONSE_PARTS = 4


class Notifier(Protocol):
    async def private(self, text: str) -> None: ...

    async def public(self, text: str) -> None: ...


def _parts(text: str, limit: int = SLACK_MESSAGE_LIMIT) -> list[str]:
    return split_message(text, limit) if len(text) > limit else [text]


class ResponseUrlNotifier:
    def __init__(self, session: aiohttp.ClientSession, response_url: str) -> None:
        self._client = AsyncWebhookClient(
            response_url,
            session=session,
            timeout=10,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
        )

    async def private(self, text: str) -> None:
        await self._send(text, "ephemeral")

    async def public(self, text: str) -> None:
        await self._send(text, "in_channel")

    async def _send(self, text: str, response_type: str) -> None:
        for part in _parts(text)[:_MAX_RESPONSE_PARTS]:
            response = await self._client.send(
                text=part,
                response_type=response_type,
                replace_original=False,
                unfurl_links=False,
            )
            if response.status_code != 200:
                log.warning("response_url post failed: %s %s", response.status_code, response.body)
                return


class EventNotifier:
    """Replies to a message event: ephemeral to its author, or in its thread."""

    def __init__(
        self, client: AsyncWebClient, *, channel: str, user: str, thread_ts: str | None
    ) -> None:
        self.client = client
        self.channel = channel
        self.user = user
        self.thread_ts = thread_ts

    async def private(self, text: str) -> None:
        for part in _parts(text):
            try:
                await self.client.chat_postEphemeral(
                    channel=self.channel, user=self.user, text=part, thread_ts=self.thread_ts
                )
            except SlackApiError as exc:
                log.warning("chat.postEphemeral failed: %s", error_code(exc))
                return

    async def public(self, text: str) -> None:
        for part in _parts(text):
            await self.client.chat_postMessage(
                channel=self.channel, text=part, thread_ts=self.thread_ts, unfurl_links=False
            )
