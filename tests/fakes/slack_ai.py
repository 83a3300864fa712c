"""The fake Slack's AI-app and App Home surface: ``assistant.threads.*``, ``views.publish``, the
external file upload, and the Stop button. Mixed into :class:`tests.fakes.slack.FakeSlack`.

* ``assistant.threads.setSuggestedPrompts``: ``channel_id``, ``prompts`` (at most 4, each with
  ``title`` and ``message``), optional ``title`` and ``thread_ts``; recorded in
  ``suggested_prompts``.
* ``assistant.threads.setTitle`` / ``setStatus``: the thread (``channel_id`` + ``thread_ts``)
  must exist (``invalid_thread_ts``); ``loading_messages`` at most 10. A status shows until it
  is set to ``""`` or the app posts in the thread (``chat.postMessage``, ``chat.startStream``),
  as in Slack; ``thread_status`` is what shows now, ``status_calls`` every call.
* ``files.getUploadURLExternal`` (``filename``, ``length``) answers an ``upload_url`` on this
  server and a ``file_id``; ``POST`` the bytes there (raw or as a form's ``file`` field);
  ``files.completeUploadExternal`` (``files`` JSON ``[{id, title}]``, optional ``channel_id``,
  ``thread_ts``, ``initial_comment``) finishes it: ``file_upload_failed`` unless exactly
  ``length`` bytes arrived; a channel the bot is not in answers ``not_in_channel``; with a
  channel the file is shared there (a message carrying it), without one it stays private to
  the app. Files are in ``files``.
* ``views.publish``: ``user_id`` of the token's team, a ``home`` view of at most 100 blocks;
  an ``image`` block's ``slack_file.id`` must be a completed file of the same team
  (``invalid_blocks`` otherwise). The latest view per user is in ``home_views``.
* :meth:`stop_session` is the user pressing Stop: Slack ends the thread's open streams and
  returns their ``ts`` for the ``agent_session_stopped`` event.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.slack import FakeMessage, FakeTeam

UPLOAD_PATH = "/upload/{file_id}"


@dataclass
class FakeFile:
    id: str
    team_id: str
    filename: str
    length: int
    alt_text: str | None
    data: bytes | None = None
    title: str | None = None
    completed: bool = False
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None


@dataclass(frozen=True)
class StatusCall:
    channel: str
    thread_ts: str
    status: str
    loading_messages: list[str] | None
    at: float = field(default_factory=time.monotonic)


class AiSurface:
    messages: dict[tuple[str, str], FakeMessage]
    not_in_channel: set[str]
    users: dict[str, dict[str, Any]]
    root_url: str

    def _init_ai_surface(self) -> None:
        self.suggested_prompts: list[dict[str, Any]] = []
        self.titles: dict[tuple[str, str], str] = {}
        self.status_calls: list[StatusCall] = []
        self.thread_status: dict[tuple[str, str], str] = {}
        self.files: dict[str, FakeFile] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.publish_count = 0
        self._file_ids = itertools.count(1)
        self.route_hooks.append(  # type: ignore[attr-defined]
            lambda app: app.router.add_post(UPLOAD_PATH, self._upload)
        )

    def _new_ts(self) -> str:
        raise NotImplementedError

    # -- what tests do ----------------------------------------------------------------------

    def stop_session(self, channel: str, thread_ts: str) -> list[str]:
        """The user pressed Stop: the thread's open streams end; returns their ts."""
        stopped = []
        for message in self.messages.values():
            if message.channel == channel and message.thread_ts == thread_ts and message.streaming:
                message.streaming = False
                stopped.append(message.ts)
        return stopped

    def thread_posted(self, channel: str, thread_ts: str | None) -> None:
        """The app posted in a thread: its status clears (called by the message methods)."""
        if thread_ts:
            self.thread_status.pop((channel, thread_ts), None)

    # -- assistant.threads.* ----------------------------------------------------------------

    def _thread_exists(self, channel: str, thread_ts: str) -> bool:
        return (channel, thread_ts) in self.messages

    def _assistant_threads_setSuggestedPrompts(
        self, args: dict[str, Any], team: FakeTeam
    ) -> dict[str, Any]:
        channel = str(args.get("channel_id") or "")
        prompts = args.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not isinstance(prompts, list) or not 0 < len(prompts) <= 4:
            return {"ok": False, "error": "invalid_arguments"}
        if not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        self.suggested_prompts.append(
            {
                "team_id": team.team_id,
                "channel_id": channel,
                "thread_ts": args.get("thread_ts"),
                "title": args.get("title"),
                "prompts": prompts,
            }
        )
        return {"ok": True}

    def _assistant_threads_setTitle(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        channel, thread_ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        title = str(args.get("title") or "")
        if not self._thread_exists(channel, thread_ts):
            return {"ok": False, "error": "invalid_thread_ts"}
        if not title:
            return {"ok": False, "error": "invalid_arguments"}
        self.titles[(channel, thread_ts)] = title
        return {"ok": True}

    def _assistant_threads_setStatus(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        channel, thread_ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        status = str(args.get("status") or "")
        loading = args.get("loading_messages")
        if isinstance(loading, str):
            loading = json.loads(loading)
        if not self._thread_exists(channel, thread_ts):
            return {"ok": False, "error": "invalid_thread_ts"}
        if loading is not None and (not isinstance(loading, list) or len(loading) > 10):
            return {"ok": False, "error": "invalid_arguments"}
        self.status_calls.append(StatusCall(channel, thread_ts, status, loading))
        if status:
            self.thread_status[(channel, thread_ts)] = status
        else:
            self.thread_status.pop((channel, thread_ts), None)
        return {"ok": True}

    # -- files ------------------------------------------------------------------------------

    def _files_getUploadURLExternal(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        filename = str(args.get("filename") or "")
        try:
            length = int(args.get("length") or 0)
        except ValueError:
            length = 0
        if not filename or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._file_ids):08d}"
        alt = args.get("alt_txt") or args.get("alt_text")
        self.files[file_id] = FakeFile(file_id, team.team_id, filename, length, alt)
        upload_url = self.root_url + UPLOAD_PATH.format(file_id=file_id)
        return {"ok": True, "upload_url": upload_url, "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None or found.completed:
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if isinstance(part, web.FileField) else b""
        else:
            data = await request.read()
        found.data = data
        return web.Response(text=f"OK - {len(data)}")

    def _files_completeUploadExternal(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        entries = args.get("files")
        if isinstance(entries, str):
            entries = json.loads(entries)
        if not isinstance(entries, list) or not entries:
            return {"ok": False, "error": "invalid_arguments"}
        channel = args.get("channel_id") or None
        thread_ts = args.get("thread_ts") or None
        if channel is not None and channel in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        if thread_ts and (channel, thread_ts) not in self.messages:
            return {"ok": False, "error": "invalid_thread_ts"}
        chosen = []
        for entry in entries:
            found = self.files.get(str(entry.get("id")))
            if found is None or found.team_id != team.team_id or found.completed:
                return {"ok": False, "error": "file_not_found"}
            if found.data is None or len(found.data) != found.length:
                return {"ok": False, "error": "file_upload_failed"}
            chosen.append((found, entry.get("title")))
        for found, title in chosen:
            found.completed, found.title = True, title or found.filename
            found.channel, found.thread_ts = channel, thread_ts
            found.initial_comment = args.get("initial_comment")
        if channel is not None:
            from tests.fakes.slack import FakeMessage

            ts = self._new_ts()
            text = args.get("initial_comment") or ""
            self.messages[(channel, ts)] = FakeMessage(
                channel,
                ts,
                text,
                thread_ts,
                team.bot_token,
                [text],
                files=[f.id for f, _ in chosen],
            )
        return {
            "ok": True,
            "files": [{"id": f.id, "title": f.title, "name": f.filename} for f, _ in chosen],
        }

    # -- App Home ---------------------------------------------------------------------------

    def _views_publish(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        user = self.users.get(str(args.get("user_id") or ""))
        if user is None or user["team_id"] != team.team_id:
            return {"ok": False, "error": "user_not_found"}
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        blocks = view.get("blocks") or []
        if len(blocks) > 100:
            return {"ok": False, "error": "invalid_blocks"}
        for block in blocks:
            if block.get("type") != "image":
                continue
            file_id = (block.get("slack_file") or {}).get("id")
            found = self.files.get(str(file_id))
            if block.get("image_url") is None and (
                found is None or not found.completed or found.team_id != team.team_id
            ):
                return {"ok": False, "error": "invalid_blocks"}
        self.home_views[user["id"]] = view
        self.publish_count += 1
        return {"ok": True, "view": {"id": f"VH{user['id']}", **view}}
