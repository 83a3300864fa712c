"""Files a user attached to a Slack message (a mention, a thread reply, a DM), fetched for the
question they came with.

The message event lists them in ``files``. For each, before a byte is fetched, the core checks
what Slack says of it (``name``, ``mimetype``, ``size``; scope ``files:read``); then
``url_private_download`` is fetched with the bot's own token as a Bearer header, streamed and
stopped past the core's limit for its kind. The token only ever goes to Slack's own hosts (or the
configured ``SLACK_API_URL``'s). A file whose details Slack left out (``file_access:
check_file_info``) is looked up with ``files.info`` first. External files (Google Drive links
and the like) have no bytes on Slack and are refused. The bytes stay in memory for the request;
routerbot never re-posts or stores them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.chat import attachments as a
from bot.download import DownloadFailed, TooLarge, fetch_capped
from bot.slack_app.errors import error_code

__all__ = ["files_of"]

log = logging.getLogger(__name__)


def _trusted(url: str, api_url: str) -> bool:
    """Whether ``url`` is Slack's (or the configured API's host), so the bot token may go."""
    host = (urlsplit(url).hostname or "").lower()
    api_host = (urlsplit(api_url).hostname or "").lower()
    return host == "slack.com" or host.endswith(".slack.com") or (bool(host) and host == api_host)


async def _details(client: AsyncWebClient, file: Mapping[str, Any]) -> Mapping[str, Any]:
    if file.get("file_access") != "check_file_info" and file.get("url_private"):
        return file
    try:
        response = await client.files_info(file=str(file.get("id", "")))
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        log.info("files.info failed: %s", error_code(exc))
        raise a.unreadable(str(file.get("name") or file.get("id") or "a file")) from None
    found = response.get("file")
    return found if isinstance(found, Mapping) else file


async def files_of(
    event: Mapping[str, Any],
    client: AsyncWebClient,
    session: aiohttp.ClientSession,
    *,
    api_url: str,
) -> tuple[a.Attachment, ...]:
    """The files attached to ``event``, downloaded; raises ``AttachmentRefused`` with the
    sentence to show (too many, too large, unsupported, unreadable)."""
    raw = event.get("files")
    if not isinstance(raw, list) or not raw:
        return ()
    files = [await _details(client, f) for f in raw if isinstance(f, Mapping)]
    a.check_declared(
        [
            a.Declared(
                str(f.get("name") or f.get("title") or "file"),
                f.get("mimetype") if isinstance(f.get("mimetype"), str) else None,
                f.get("size") if isinstance(f.get("size"), int) else None,
            )
            for f in files
        ]
    )
    token = client.token or ""
    downloaded: list[a.Attachment] = []
    for file in files:
        name = str(file.get("name") or file.get("title") or "file")
        media_type = str(file.get("mimetype") or "")
        url = file.get("url_private_download") or file.get("url_private")
        if file.get("is_external") or file.get("mode") in ("external", "tombstone"):
            raise a.unreadable(name)
        if not isinstance(url, str) or not _trusted(url, api_url):
            raise a.unreadable(name)
        kind = a.kind_of(name, media_type)
        try:
            data = await fetch_capped(
                session,
                url,
                cap=a.byte_limit(kind),
                headers={"Authorization": f"Bearer {token}"},
                # Slack answers a bad token with its sign-in page, not an error.
                refuse_html=media_type != "text/html",
            )
        except TooLarge:
            raise a.too_large(name, kind) from None
        except DownloadFailed as exc:
            log.info("could not download a Slack file: %s", exc)
            raise a.unreadable(name) from None
        downloaded.append(a.Attachment(name, media_type, data))
    return tuple(downloaded)
