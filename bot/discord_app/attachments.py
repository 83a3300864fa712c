"""Files attached on Discord (the ``file`` option of ``/chat``, attachments on a reply), fetched
for the question they came with.

Discord describes each file (``filename``, ``content_type``, ``size``) and gives a signed,
expiring CDN URL; the core checks the description before a byte is fetched, then the file is
fetched promptly (after the interaction is deferred, so Discord's 3 s are never at risk),
streamed and stopped past the core's limit for its kind. URLs are fetched only from Discord's
CDN hosts (or the configured ``DISCORD_API_BASE``'s host). The bytes stay in memory for the
request; routerbot never re-posts or stores them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from urllib.parse import urlsplit

import aiohttp
import discord

from bot.core.chat import attachments as a
from bot.core.replies import ChatFailed, Reply
from bot.download import DownloadFailed, TooLarge, fetch_capped

__all__ = ["CDN_HOSTS", "Downloads", "after_download"]

log = logging.getLogger(__name__)

CDN_HOSTS = ("cdn.discordapp.com", "media.discordapp.net")


class Downloads:
    """One pooled HTTP session for attachment downloads, closed with the client."""

    def __init__(self, api_base: str) -> None:
        self.api_host = (urlsplit(api_base).hostname or "").lower()
        self._session: aiohttp.ClientSession | None = None

    def _trusted(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        secure = parts.scheme == "https" or host == self.api_host
        return secure and (host in CDN_HOSTS or (bool(host) and host == self.api_host))

    async def fetch(self, files: Sequence[discord.Attachment]) -> tuple[a.Attachment, ...]:
        """The files' bytes; raises ``AttachmentRefused`` with the sentence to show."""
        if not files:
            return ()
        a.check_declared([a.Declared(f.filename, f.content_type, f.size) for f in files])
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        fetched: list[a.Attachment] = []
        for file in files:
            media_type = file.content_type or ""
            kind = a.kind_of(file.filename, media_type)
            if not self._trusted(file.url):
                raise a.unreadable(file.filename)
            try:
                data = await fetch_capped(self._session, file.url, cap=a.byte_limit(kind))
            except TooLarge:
                raise a.too_large(file.filename, kind) from None
            except DownloadFailed as exc:
                log.info("could not download a Discord attachment: %s", exc)
                raise a.unreadable(file.filename) from None
            fetched.append(a.Attachment(file.filename, media_type, data))
        return tuple(fetched)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def after_download(
    downloads: Downloads,
    files: Sequence[discord.Attachment],
    run: Callable[[tuple[a.Attachment, ...]], AsyncIterator[Reply]],
) -> AsyncGenerator[Reply, None]:
    """The replies of ``run`` with the downloaded files, or one ``ChatFailed`` (nothing sent)
    when a file is refused."""
    try:
        fetched = await downloads.fetch(files)
    except a.AttachmentRefused as exc:
        yield ChatFailed(exc.message)
        return
    replies = run(fetched)
    try:
        async for reply in replies:
            yield reply
    finally:
        aclose = getattr(replies, "aclose", None)
        if aclose is not None:
            await aclose()
