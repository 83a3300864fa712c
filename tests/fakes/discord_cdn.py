"""The fake Discord's CDN: files members attach, served at signed, expiring URLs.

:meth:`CdnRoutes.member_file` stores a file and returns the attachment object Discord sends
(``id``, ``filename``, ``size``, ``content_type``, ``url``, ``proxy_url``), to put on a message
(``post_message(..., attachments=[…])``) or in an application command's ``attachment`` option
(``slash("chat", file=…)``). Its ``url`` is ``<base>/attachments/<channel>/<id>/<name>`` with
Discord's ``ex`` (expiry, hex seconds), ``is`` (issued) and ``hm`` (signature) parameters; a URL
whose signature does not match, or that has expired, answers 404 as the real CDN does. The
body is written in chunks, so a client that stops reading past its cap leaves the download
incomplete (:attr:`CdnDownload.complete`). ``size`` may be given smaller than the bytes to play
a platform that under-reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.discord_payloads import snowflake

CHUNK = 64 * 1024
_SECRET = b"fake-cdn-signing-key"


@dataclass
class CdnFile:
    id: str
    channel_id: int
    filename: str
    content_type: str | None
    data: bytes
    expires: int


@dataclass
class CdnDownload:
    file_id: str
    sent: int = 0
    complete: bool = False


def _signature(file_id: str, expires: int) -> str:
    return hashlib.sha256(_SECRET + f"{file_id}:{expires:x}".encode()).hexdigest()[:32]


class CdnRoutes:
    base_url: str

    def _init_cdn(self) -> None:
        self.cdn_files: dict[str, CdnFile] = {}
        self.cdn_downloads: list[CdnDownload] = []

    def member_file(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = "application/octet-stream",
        size: int | None = None,
        ttl: float = 86_400,
    ) -> dict[str, Any]:
        """Store a member's file; returns the attachment object Discord would send."""
        file_id = str(snowflake())
        expires = int(time.time() + ttl)
        self.cdn_files[file_id] = CdnFile(
            file_id, channel_id, filename, content_type, data, expires
        )
        query = f"ex={expires:x}&is={int(time.time()):x}&hm={_signature(file_id, expires)}&"
        path = f"/attachments/{channel_id}/{file_id}/{filename}"
        attachment: dict[str, Any] = {
            "id": file_id,
            "filename": filename,
            "size": len(data) if size is None else size,
            "url": f"{self.base_url}{path}?{query}",
            "proxy_url": f"{self.base_url}{path}?{query}",
        }
        if content_type is not None:
            attachment["content_type"] = content_type
        return attachment

    def add_cdn_routes(self, app: web.Application) -> None:
        app.router.add_get("/attachments/{channel}/{id}/{filename}", self._cdn)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        file = self.cdn_files.get(request.match_info["id"])
        if file is None or request.match_info["filename"] != file.filename:
            return web.Response(status=404, text="Not Found")
        expires = request.query.get("ex", "")
        signed = request.query.get("hm") == _signature(file.id, file.expires)
        if not signed or expires != f"{file.expires:x}" or file.expires < time.time():
            # The real CDN answers an unsigned or expired link like a missing file.
            return web.Response(status=404, text="This content is no longer available.")
        download = CdnDownload(file.id)
        self.cdn_downloads.append(download)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": file.content_type or "application/octet-stream"}
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            for start in range(0, len(file.data), CHUNK):
                await response.write(file.data[start : start + CHUNK])
                download.sent += len(file.data[start : start + CHUNK])
            await response.write_eof()
            download.complete = True
        return response
