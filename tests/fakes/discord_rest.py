"""The REST base of the fake Discord: recording, injected 429s, identity, application
commands, channel messages and direct messages (``POST /users/@me/channels`` opens a DM
channel, whose messages land in ``direct_messages``), with Discord's errors where a bot breaks
the rules.
Interaction routes are in ``discord_interactions``; the whole fake is ``tests.fakes.discord``.

Messages may carry files the way discord.py sends them: ``multipart/form-data`` with the JSON
in ``payload_json`` and the bytes in ``files[n]``, referenced by ``attachments[].id == n``.
Stored files become the message's ``attachments`` (their bytes in ``RestRoutes.uploads``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import mimetypes
import re
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aiohttp import web

from tests.fakes.discord_payloads import (
    LOADING,
    FakeChannel,
    FakeGuild,
    FakeUser,
    application,
    message,
    snowflake,
)

MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Call:
    method: str
    #: Relative to the API base, e.g. ``/channels/1/messages``.
    path: str
    query: dict[str, str]
    json: Any
    status: int = 0
    #: Event-loop time when the response was ready.
    at: float = 0.0


@dataclass
class RateLimit:
    method: str
    pattern: re.Pattern[str]
    retry_after: float
    times: int


@dataclass(frozen=True)
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes


#: The files of a multipart request, decoded once by the recording middleware.
UPLOADS = web.RequestKey("uploads", list[Upload])


def _content_type(request: web.Request) -> str:
    # The whole header: ``request.content_type`` drops the multipart boundary.
    return request.headers.get("Content-Type", "")


def decode_body(content_type: str, raw: bytes) -> tuple[Any, list[Upload]]:
    """A request body: JSON, or discord.py's multipart form (``payload_json`` + files)."""
    if not content_type.startswith("multipart/form-data"):
        return (json.loads(raw) if raw else {}), []
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    form = BytesParser(policy=HTTP).parsebytes(head + raw)
    payload: Any = {}
    uploads: list[Upload] = []
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        if name == "payload_json":
            payload = json.loads(data)
        else:
            filename = part.get_filename() or ""
            uploads.append(Upload(str(name), filename, part.get_content_type(), data))
    return payload, uploads


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # Exactly "application/json", no charset: discord.py compares the header verbatim.
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def error(status: int, code: int, text: str) -> web.Response:
    return json_response({"message": text, "code": code}, status=status)


def too_long(body: Any) -> web.Response | None:
    content = body.get("content") if isinstance(body, dict) else None
    if isinstance(content, str) and len(content) > MESSAGE_LIMIT:
        problem = {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
        errors = {"content": {"_errors": [problem]}}
        body = {"message": "Invalid Form Body", "code": 50035, "errors": errors}
        return json_response(body, status=400)
    return None


class RestRoutes:
    """Mixed into FakeDiscord, which provides the bot user, token, guilds and ``notify``."""

    token: str
    bot: FakeUser
    application_id: int
    guilds: dict[int, FakeGuild]
    recommended_shards: int
    gateway_url: str

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.rate_limits: list[RateLimit] = []
        #: The bytes of every stored attachment, by attachment id.
        self.uploads: dict[str, bytes] = {}
        #: DM channel id -> recipient user id.
        self.dm_channels: dict[int, int] = {}
        #: (recipient user id, content) of every direct message the bot sent.
        self.direct_messages: list[tuple[int, str]] = []

    def notify(self) -> None:
        raise NotImplementedError

    def rate_limit(
        self, method: str, path: str, *, retry_after: float = 0.2, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``method`` whose path matches regex ``path`` get 429."""
        self.rate_limits.append(RateLimit(method, re.compile(path), retry_after, times))

    def sends(self) -> list[Call]:
        """Every recorded call that carried message content."""
        return [c for c in self.calls if isinstance(c.json, dict) and content_of(c.json)]

    def edit_times(self, path_suffix: str) -> list[float]:
        """When each successful edit of paths ending in ``path_suffix`` happened."""
        return [
            c.at
            for c in self.calls
            if c.method == "PATCH" and c.status == 200 and c.path.endswith(path_suffix)
        ]

    def last_message_from(self, user: FakeUser) -> dict[str, Any]:
        mine = [m for m in self.messages.values() if m["author"]["id"] == str(user.id)]
        assert mine, f"{user.name} has sent nothing"
        return mine[-1]

    # ---- plumbing -----------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)  # type: ignore[no-any-return]
        raw = await request.read()
        body: Any = None
        if raw:
            with contextlib.suppress(ValueError):
                body, request[UPLOADS] = decode_body(_content_type(request), raw)
        path = request.path.removeprefix("/api/v10")
        response = self._limited(request.method, path)
        if response is None:
            try:
                response = await handler(request)
            except web.HTTPNotFound:
                response = error(404, 0, "404: Not Found")
            except web.HTTPMethodNotAllowed:
                response = error(405, 0, "405: Method Not Allowed")
        at = asyncio.get_running_loop().time()
        self.calls.append(
            Call(request.method, path, dict(request.query), body, response.status, at)
        )
        self.notify()
        return response

    def _limited(self, method: str, path: str) -> web.Response | None:
        for rule in self.rate_limits:
            if rule.method == method and rule.pattern.search(path):
                rule.times -= 1
                if rule.times <= 0:
                    self.rate_limits.remove(rule)
                headers = {
                    "Retry-After": str(math.ceil(rule.retry_after)),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(rule.retry_after),
                    "X-RateLimit-Bucket": "fake-bucket",
                    "X-RateLimit-Scope": "user",
                    # Discord's API answers through Google's proxy; discord.py retries a 429
                    # only when this header shows it came from Discord, not a Cloudflare ban.
                    "Via": "1.1 google",
                }
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": rule.retry_after,
                    "global": False,
                }
                return json_response(body, status=429, headers=headers)
        return None

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        return decode_body(_content_type(request), raw)[0]

    def attach(self, found: dict[str, Any], body: dict[str, Any], request: web.Request) -> None:
        """Apply a message body's ``attachments`` and ``embeds`` to ``found``: existing
        attachments listed by id are kept, ``files[n]`` uploads listed as id ``n`` are stored."""
        uploads = request.get(UPLOADS, [])
        if "embeds" in body:
            found["embeds"] = body["embeds"] or []
        if "attachments" not in body and not uploads:
            return
        listed = body.get("attachments")
        if listed is None:
            listed = [{"id": i} for i in range(len(uploads))]
        kept = {a["id"]: a for a in found.get("attachments", [])}
        result = []
        for entry in listed:
            ident = str(entry.get("id"))
            if ident in kept:
                result.append(kept[ident])
                continue
            upload = next((u for u in uploads if u.field == f"files[{ident}]"), None)
            if upload is None:
                continue
            attachment_id = str(snowflake())
            self.uploads[attachment_id] = upload.data
            filename = entry.get("filename") or upload.filename
            result.append(
                {
                    "id": attachment_id,
                    "filename": filename,
                    "size": len(upload.data),
                    # Discord names the type from the file, not the form part's header.
                    "content_type": mimetypes.guess_type(filename)[0] or upload.content_type,
                    "url": f"https://cdn.fake/attachments/{attachment_id}/{filename}",
                    "proxy_url": f"https://media.fake/attachments/{attachment_id}/{filename}",
                }
            )
        found["attachments"] = result

    def add_routes(self, app: web.Application, prefix: str) -> None:
        r = app.router
        app_path = prefix + "/applications/{app}"
        r.add_get(prefix + "/users/@me", self._bot_route(self._me))
        r.add_post(prefix + "/users/@me/channels", self._bot_route(self._open_dm))
        r.add_get(prefix + "/gateway/bot", self._bot_route(self._gateway_bot))
        r.add_get(prefix + "/gateway", self._gateway_plain)
        r.add_get(prefix + "/oauth2/applications/@me", self._bot_route(self._application))
        r.add_get(prefix + "/applications/@me", self._bot_route(self._application))
        r.add_route("*", app_path + "/commands", self._bot_route(self._commands))
        r.add_route("*", app_path + "/guilds/{guild}/commands", self._bot_route(self._commands))
        r.add_get(prefix + "/channels/{channel}", self._bot_route(self._channel))
        r.add_post(prefix + "/channels/{channel}/messages", self._bot_route(self._create))
        r.add_route(
            "*",
            prefix + "/channels/{channel}/messages/{message}",
            self._bot_route(self._channel_message),
        )
        r.add_post(prefix + "/channels/{channel}/typing", self._bot_route(self._typing))

    def _bot_route(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self._authorized(request):
                return error(401, 0, "401: Unauthorized")
            return await handler(request)  # type: ignore[no-any-return]

        return guarded

    # ---- identity and commands ----------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        return json_response(self.bot.payload())

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": limit,
            }
        )

    async def _gateway_plain(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _application(self, request: web.Request) -> web.Response:
        return json_response(application(self.application_id, self.bot))

    async def _commands(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != str(self.application_id):
            return error(403, 50001, "Missing Access")
        guild = request.match_info.get("guild")
        registry = self.guild_commands.setdefault(int(guild), []) if guild else self.commands
        if request.method == "GET":
            return json_response(registry)
        if request.method != "PUT":
            return error(405, 0, "405: Method Not Allowed")
        body = await self._body(request)
        if not isinstance(body, list) or len(body) > 100:
            return error(400, 50035, "Invalid Form Body")
        ids = {c["name"]: c["id"] for c in registry}
        registry[:] = [
            {
                **cmd,
                "id": ids.get(cmd["name"], str(snowflake())),
                "application_id": str(self.application_id),
                "version": str(snowflake()),
                **({"guild_id": guild} if guild else {}),
            }
            for cmd in body
        ]
        return json_response(registry)

    async def _message_op(self, request: web.Request, found: dict[str, Any]) -> web.Response:
        if request.method == "GET":
            return json_response(found)
        if request.method == "DELETE":
            found["deleted"] = True
            return web.Response(status=204)
        if request.method != "PATCH":
            return error(405, 0, "405: Method Not Allowed")
        body = await self._body(request)
        if (problem := too_long(body)) is not None:
            return problem
        if "content" in body:
            found["content"] = body["content"] or ""
        self.attach(found, body, request)
        found["flags"] = found.get("flags", 0) & ~LOADING
        found["edited_timestamp"] = found["timestamp"]
        return json_response(found)

    # ---- channels -----------------------------------------------------------------------

    def _channel_of(self, request: web.Request) -> tuple[FakeGuild, FakeChannel] | None:
        channel_id = int(request.match_info["channel"])
        for guild in self.guilds.values():
            if (channel := guild.channel(channel_id)) is not None:
                return guild, channel
        return None

    async def _channel(self, request: web.Request) -> web.Response:
        found = self._channel_of(request)
        if found is None:
            return error(404, 10003, "Unknown Channel")
        guild, channel = found
        return json_response(channel.payload(guild.id))

    async def _open_dm(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        recipient = str(body.get("recipient_id", ""))
        if not recipient.isdigit():
            return error(400, 50035, "Invalid Form Body (recipient_id)")
        channel_id = next(
            (c for c, u in self.dm_channels.items() if u == int(recipient)), snowflake()
        )
        self.dm_channels[channel_id] = int(recipient)
        user = {"id": recipient, "username": f"user{recipient}", "discriminator": "0"}
        user |= {"global_name": None, "avatar": None, "bot": False, "public_flags": 0}
        data = {"id": str(channel_id), "type": 1, "last_message_id": None, "recipients": [user]}
        return json_response(data)

    async def _create(self, request: web.Request) -> web.Response:
        dm_recipient = self.dm_channels.get(int(request.match_info["channel"]))
        if dm_recipient is not None:
            body = await self._body(request)
            if not content_of(body):
                return error(400, 50006, "Cannot send an empty message")
            self.direct_messages.append((dm_recipient, content_of(body)))
            channel_id = int(request.match_info["channel"])
            sent = message(channel_id=channel_id, author=self.bot, content=content_of(body))
            return json_response(sent)
        found = self._channel_of(request)
        if found is None:
            return error(404, 10003, "Unknown Channel")
        guild, channel = found
        body = await self._body(request)
        if (problem := too_long(body)) is not None:
            return problem
        if not content_of(body):
            return error(400, 50006, "Cannot send an empty message")
        reference = None
        if ref := body.get("message_reference"):
            reference = self.messages.get(int(ref["message_id"]))
            if reference is None:
                return error(400, 50035, "Invalid Form Body (unknown message_reference)")
        sent = message(
            channel_id=channel.id,
            author=self.bot,
            content=body.get("content", ""),
            guild_id=guild.id,
            reference=reference,
        )
        self.messages[int(sent["id"])] = sent
        return json_response(sent)

    async def _channel_message(self, request: web.Request) -> web.Response:
        found = self.messages.get(int(request.match_info["message"]))
        if found is None or found["channel_id"] != request.match_info["channel"]:
            return error(404, 10008, "Unknown Message")
        if request.method != "GET" and found["author"]["id"] != str(self.bot.id):
            return error(403, 50005, "Cannot edit a message authored by another user")
        return await self._message_op(request, found)

    async def _typing(self, request: web.Request) -> web.Response:
        return web.Response(status=204)


def content_of(body: dict[str, Any]) -> str:
    content = body.get("content")
    if content is None and isinstance(body.get("data"), dict):
        content = body["data"].get("content")
    return content if isinstance(content, str) else ""
