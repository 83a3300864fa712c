"""Downloading a file a user attached, for the front-ends: streamed, stopped past its cap, kept
in memory only.

Each front-end brings its platform's auth (Slack: the bot token as a Bearer header; Discord: the
attachment's signed CDN URL) and the cap the core sets for the file's kind
(:func:`bot.core.chat.attachments.byte_limit`). The body is read in chunks and the connection is
closed as soon as it passes the cap, whatever the platform said the size was. Nothing is written
to disk; the bytes live as long as the request that holds them.
"""

from __future__ import annotations

import logging

import aiohttp

__all__ = ["DOWNLOAD_TIMEOUT", "DownloadFailed", "TooLarge", "fetch_capped"]

log = logging.getLogger(__name__)

#: A whole download, connect to last byte.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=20)
CHUNK = 64 * 1024
MAX_REDIRECTS = 3


class TooLarge(Exception):
    """The body passed the cap (reading stopped there)."""


class DownloadFailed(Exception):
    """The file could not be fetched (status, transport, or a sign-in page instead of it)."""


async def fetch_capped(
    session: aiohttp.ClientSession,
    url: str,
    *,
    cap: int,
    headers: dict[str, str] | None = None,
    refuse_html: bool = False,
) -> bytes:
    """The body of ``url``, at most ``cap`` bytes; raises :class:`TooLarge` or
    :class:`DownloadFailed`. ``refuse_html``: an HTML answer means the platform showed a sign-in
    page (Slack does so for a missing or wrong token) rather than the file."""
    try:
        async with session.get(
            url, headers=headers, timeout=DOWNLOAD_TIMEOUT, max_redirects=MAX_REDIRECTS
        ) as response:
            if response.status != 200:
                raise DownloadFailed(f"HTTP {response.status}")
            if refuse_html and response.content_type == "text/html":
                raise DownloadFailed("a sign-in page instead of the file")
            if response.content_length is not None and response.content_length > cap:
                raise TooLarge()
            body = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK):
                body += chunk
                if len(body) > cap:
                    # Leaving the block closes the connection: nothing more is read.
                    raise TooLarge()
            return bytes(body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("a download failed: %s", type(exc).__name__)
        raise DownloadFailed(type(exc).__name__) from None
