"""Files users share in the fake Slack, as a bot reads them. Mixed into
:class:`tests.fakes.slack.FakeSlack`.

:meth:`UserFiles.share_file` stores a file a user posted and returns the file object Slack puts
in the message event's ``files`` (``id``, ``name``, ``mimetype``, ``filetype``, ``size``,
``mode``, ``url_private``, ``url_private_download``); with ``check_file_info`` the event gets
only ``{"id", "file_access": "check_file_info"}`` and the details come from ``files.info``.

Downloads (``GET /files-pri/<team>-<id>/<name>`` and ``…/download/<name>``) need the file's
team's bot token as ``Authorization: Bearer``; without it (or with another team's) Slack does
not answer an error but its sign-in page: HTTP 200, ``text/html``. The body is written in
chunks, so a client that stops reading past its cap leaves the download incomplete
(:attr:`FileDownload.complete`). ``size`` may be given smaller than the bytes, to play a
platform that under-reports. Every download is in ``file_downloads``.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.slack import FakeTeam

CHUNK = 64 * 1024
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


@dataclass
class SharedFile:
    id: str
    team_id: str
    name: str
    mimetype: str
    data: bytes
    size: int
    external: bool = False


@dataclass
class FileDownload:
    file_id: str
    token: str | None
    authorized: bool
    sent: int = 0
    complete: bool = False


class UserFiles:
    teams: dict[str, FakeTeam]
    root_url: str

    def _init_user_files(self) -> None:
        self.shared_files: dict[str, SharedFile] = {}
        self.file_downloads: list[FileDownload] = []
        self._shared_ids = itertools.count(1)
        self.route_hooks.append(self._file_routes)  # type: ignore[attr-defined]

    def share_file(
        self,
        team_id: str,
        name: str,
        mimetype: str,
        data: bytes,
        *,
        size: int | None = None,
        check_file_info: bool = False,
        external: bool = False,
    ) -> dict[str, Any]:
        """A file a user posted; returns what the message event lists in ``files``."""
        file = SharedFile(
            f"F{next(self._shared_ids):06d}",
            team_id,
            name,
            mimetype,
            data,
            len(data) if size is None else size,
            external,
        )
        self.shared_files[file.id] = file
        if check_file_info:
            return {"id": file.id, "file_access": "check_file_info"}
        return self._file_object(file)

    def _file_object(self, file: SharedFile) -> dict[str, Any]:
        base = f"{self.root_url}/files-pri/{file.team_id}-{file.id}"
        obj: dict[str, Any] = {
            "id": file.id,
            "name": file.name,
            "title": file.name,
            "mimetype": file.mimetype,
            "filetype": file.name.rsplit(".", 1)[-1].lower(),
            "size": file.size,
            "mode": "external" if file.external else "hosted",
            "is_external": file.external,
            "url_private": f"{base}/{file.name}",
        }
        if not file.external:
            obj["url_private_download"] = f"{base}/download/{file.name}"
        return obj

    def _files_info(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        file = self.shared_files.get(str(args.get("file", "")))
        if file is None or file.team_id != team.team_id:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self._file_object(file)}

    def _file_routes(self, app: web.Application) -> None:
        app.router.add_get("/files-pri/{team_file}/{name}", self._download)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._download)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        team_id, _, file_id = request.match_info["team_file"].partition("-")
        file = self.shared_files.get(file_id)
        if file is None or file.team_id != team_id or file.name != request.match_info["name"]:
            return web.Response(status=404, text="Not Found")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        team = self.teams.get(token or "")
        download = FileDownload(file.id, token, team is not None and team.team_id == team_id)
        self.file_downloads.append(download)
        if not download.authorized:
            return web.Response(status=200, text=SIGN_IN_PAGE, content_type="text/html")
        response = web.StreamResponse(status=200, headers={"Content-Type": file.mimetype})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            for start in range(0, len(file.data), CHUNK):
                piece = file.data[start : start + CHUNK]
                await response.write(piece)
                download.sent += len(piece)
            await response.write_eof()
            download.complete = True
        return response
