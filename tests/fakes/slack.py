"""A small, honest fake of the Slack Web API over real HTTP on loopback (aiohttp.web).

It serves ``POST|GET /api/<method>`` the way ``slack_sdk`` calls it (JSON, form or query
arguments; the token as ``Authorization: Bearer`` or a ``token`` argument; HTTP 200 with
``{"ok": false, "error": ...}`` for API errors) and records every call in ``calls``, with the
token that made it and when. Methods: ``auth.test``, ``chat.postMessage``, ``chat.update``,
``chat.delete``, ``chat.postEphemeral``, ``chat.startStream``, ``chat.appendStream``,
``chat.stopStream``, ``users.info``, ``views.open``, ``oauth.v2.access``; the AI-app and App
Home methods (``assistant.threads.*``, ``views.publish``, the external file upload) come from
``tests/fakes/slack_ai.py``; files users share (``url_private_download`` behind the bot token,
``files.info``) from ``tests/fakes/slack_files.py``. Messages take ``text`` or ``markdown_text``.
``response_url`` posts land on ``/respond/<id>`` and are recorded in ``responses``.
Socket Mode (``apps.connections.open``, the WebSocket) comes from ``tests/fakes/slack_socket.py``.

Workspaces and users are added with :meth:`FakeSlack.add_team` / :meth:`FakeSlack.add_user`;
a token only sees its own team's users. Faults are scripted per method::

    slack.fail("chat.update", status=429, retry_after=1)   # next chat.update: HTTP 429
    slack.fail("chat.postMessage", status=503, times=2)    # two 503s
    slack.fail("views.open", error="expired_trigger_id")   # an API error (HTTP 200)
    slack.not_in_channel.add("C_PRIVATE")                  # chat.postMessage: not_in_channel
    slack.native_streaming_unavailable.add("T2")           # chat.startStream: feature_not_enabled
    slack.stream_ttl = 1.5                                 # streams end on Slack's side after 1.5 s

Native streaming is available by default, as on current Slack. A stream is a reply: its
``thread_ts`` must be a top-level message of the channel (``thread_not_found`` if unknown,
``invalid_thread_ts`` for a reply); in channels (ids ``C…``/``G…``, not DMs)
``recipient_user_id`` and ``recipient_team_id`` are required (``invalid_arguments``);
``markdown_text`` takes at most 12,000 characters (``msg_too_long``). The stream is a
:class:`FakeMessage` with ``streaming`` set: each append grows its text, and ``history`` and
``update_times`` record every append and the stop (so :meth:`FakeSlack.update_violations` covers
them). Once stopped (or expired by ``stream_ttl``), appends and stops answer
``message_not_in_streaming_state`` and ``chat.update`` works on it; while it streams,
``chat.update`` answers ``cant_update_message`` (the fake's conservative reading: routerbot must
not edit a live stream).

The module also builds signed requests as Slack sends them (:func:`signed_headers`,
:func:`command_body`, :func:`event_body`), for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.fakes.slack_ai import AiSurface
from tests.fakes.slack_files import UserFiles

__all__ = [
    "FakeSlack",
    "FakeTeam",
    "SlackCall",
    "command_body",
    "event_body",
    "signed_headers",
]

#: Slack answers msg_too_long around here for ``text``.
TEXT_LIMIT = 4000
#: ``markdown_text`` (messages and streams) takes at most this many characters.
STREAM_TEXT_LIMIT = 12_000


def _message_text(args: Mapping[str, Any]) -> str:
    return str(args.get("text") or args.get("markdown_text") or "")


def _too_long(args: Mapping[str, Any]) -> bool:
    return (
        len(str(args.get("text") or "")) > TEXT_LIMIT
        or len(str(args.get("markdown_text") or "")) > STREAM_TEXT_LIMIT
    )


@dataclass(frozen=True, slots=True)
class SlackCall:
    method: str
    token: str | None
    args: Mapping[str, Any]
    #: ``time.monotonic()`` when the request arrived.
    at: float
    #: The HTTP status answered (429/5xx for injected faults).
    status: int = 200
    error: str | None = None


@dataclass(slots=True)
class FakeTeam:
    team_id: str
    name: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    enterprise_id: str | None = None


@dataclass(slots=True)
class FakeMessage:
    channel: str
    ts: str
    text: str
    thread_ts: str | None
    token: str | None
    #: Every text the message had, in order (the post, then each update).
    history: list[str] = field(default_factory=list)
    update_times: list[float] = field(default_factory=list)
    deleted: bool = False
    #: ``time.monotonic()`` when the message was posted (or its stream started).
    posted_at: float = field(default_factory=time.monotonic)
    #: A native stream still open (``chat.startStream`` until ``chat.stopStream``).
    streaming: bool = False
    stream_started: float | None = None
    #: Files shared with the message (``files.completeUploadExternal`` with a channel).
    files: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Fault:
    method: str
    status: int
    error: str | None
    retry_after: float | None
    times: int


class FakeSlack(AiSurface, UserFiles):
    def __init__(self, *, client_id: str = "123.456", client_secret: str = "shh") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.teams: dict[str, FakeTeam] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: list[SlackCall] = []
        self.messages: dict[tuple[str, str], FakeMessage] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.oauth_codes: dict[str, str] = {}
        self.not_in_channel: set[str] = set()
        self.expired_triggers: set[str] = set()
        #: Teams whose workspace cannot stream natively; chat.startStream answers this error.
        self.native_streaming_unavailable: set[str] = set()
        self.native_streaming_error = "feature_not_enabled"
        #: Seconds after which Slack ends a stream on its side (None: never).
        self.stream_ttl: float | None = None
        #: Seconds every API call waits before answering (latency experiments).
        self.latency = 0.0
        #: Extensions (tests/fakes/slack_socket.py): methods answered without the bot-token
        #: check, ``name -> (args, token) -> JSON``, and hooks that add routes before start.
        self.token_methods: dict[str, Callable[[dict[str, Any], str | None], dict[str, Any]]] = {}
        self.route_hooks: list[Callable[[web.Application], None]] = []
        self._faults: list[_Fault] = []
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.root_url = ""
        self._init_ai_surface()
        self._init_user_files()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What ``SLACK_API_URL`` should be."""
        return f"{self.root_url}/api/"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{id}", self._respond)
        for hook in self.route_hooks:
            hook(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.root_url = f"http://{bound[0]}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- set-up ---------------------------------------------------------------------------------

    def add_team(
        self, team_id: str, *, name: str | None = None, token: str | None = None
    ) -> FakeTeam:
        n = len(self.teams) + 1
        team = FakeTeam(
            team_id=team_id,
            name=name or f"Team {team_id}",
            bot_token=token or f"xoxb-{team_id.lower()}-{n}-fake",
            bot_user_id=f"UBOT{team_id}",
            bot_id=f"BBOT{team_id}",
        )
        self.teams[team.bot_token] = team
        return team

    def add_user(
        self, team_id: str, user_id: str, *, admin: bool = False, owner: bool = False
    ) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": team_id,
            "name": user_id.lower(),
            "deleted": False,
            "is_admin": admin,
            "is_owner": owner,
            "is_primary_owner": False,
            "is_bot": False,
        }

    def user_message(self, channel: str, ts: str, text: str, thread_ts: str | None = None) -> None:
        """A message a person posted (it arrives as an event); bots may reply in its thread."""
        self.messages.setdefault(
            (channel, ts), FakeMessage(channel, ts, text, thread_ts, None, [text])
        )

    def response_url(self) -> str:
        return f"{self.root_url}/respond/{next(self._ids)}"

    def oauth_code(self, team: FakeTeam) -> str:
        code = f"code-{next(self._ids)}"
        self.oauth_codes[code] = team.bot_token
        return code

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        if status == 429 and error is None:
            error = "ratelimited"
        self._faults.append(_Fault(method, status, error, retry_after, times))

    # -- inspection -----------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None, *, top_level: bool = False) -> list[FakeMessage]:
        """Bot messages still standing, in posting order (``top_level``: not in a thread)."""
        return [
            m
            for m in self.messages.values()
            if not m.deleted
            and m.token is not None
            and (channel is None or m.channel == channel)
            and not (top_level and m.thread_ts)
        ]

    def thread(self, channel: str, ts: str) -> list[FakeMessage]:
        return [m for m in self.posted(channel) if m.thread_ts == ts]

    def responses_to(self, url: str) -> list[dict[str, Any]]:
        ident = url.rsplit("/", 1)[-1]
        return [payload for rid, payload in self.responses if rid == ident]

    def update_violations(self, min_interval: float = 0.95) -> int:
        """Edits (``chat.update``, stream appends and stops) closer than ``min_interval`` to the
        previous one of the same message."""
        count = 0
        for message in self.messages.values():
            times = message.update_times
            count += sum(1 for a, b in itertools.pairwise(times) if b - a < min_interval)
        return count

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is re-checked after every recorded call."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    # -- HTTP -----------------------------------------------------------------------------------

    async def _args(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                args.update(json.loads(raw))
            else:
                args.update(parse_qsl(raw.decode()))
        auth = request.headers.get("Authorization", "")
        token: str | None = None
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        elif auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            args.setdefault("client_id", client_id)
            args.setdefault("client_secret", secret)
        token = token or args.pop("token", None)
        return args, token

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _record(self, call: SlackCall) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token = await self._args(request)
        at = time.monotonic()
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(method)
        if fault is not None:
            await self._record(SlackCall(method, token, args, at, fault.status, fault.error))
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after else None
            if fault.status >= 500:
                return web.Response(status=fault.status, text="upstream trouble", headers=headers)
            return web.json_response(
                {"ok": False, "error": fault.error}, status=fault.status, headers=headers
            )
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        team = self.teams.get(token or "")
        if method in self.token_methods:
            result: dict[str, Any] = self.token_methods[method](args, token)
        elif handler is None:
            result = {"ok": False, "error": "unknown_method"}
        elif team is None and method != "oauth.v2.access":
            result = {"ok": False, "error": "invalid_auth" if token else "not_authed"}
        else:
            result = handler(args, team)
        await self._record(SlackCall(method, token, args, at, 200, result.get("error")))
        return web.json_response(result)

    async def _respond(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read() or b"{}")
        self.responses.append((request.match_info["id"], payload))
        await self._record(SlackCall("response_url", None, payload, time.monotonic(), 200, None))
        return web.Response(text="ok")

    # -- methods (each: (args, team) -> JSON) ---------------------------------------------------

    def _new_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def _auth_test(self, _args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{team.team_id.lower()}.slack.test/",
            "team": team.name,
            "user": "routerbot",
            "team_id": team.team_id,
            "user_id": team.bot_user_id,
            "bot_id": team.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_postMessage(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        channel, text = str(args.get("channel", "")), _message_text(args)
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        if not text:
            return {"ok": False, "error": "no_text"}
        if _too_long(args):
            return {"ok": False, "error": "msg_too_long"}
        thread_ts = args.get("thread_ts") or None
        if thread_ts and (channel, thread_ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = self._new_ts()
        self.messages[(channel, ts)] = FakeMessage(
            channel, ts, text, thread_ts, team.bot_token, [text]
        )
        self.thread_posted(channel, thread_ts)
        message = {"type": "message", "text": text, "user": team.bot_user_id, "ts": ts}
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        message = self.messages.get((str(args.get("channel")), str(args.get("ts"))))
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        if message.token != team.bot_token or self._still_streaming(message):
            return {"ok": False, "error": "cant_update_message"}
        text = _message_text(args)
        if _too_long(args):
            return {"ok": False, "error": "msg_too_long"}
        message.text = text
        message.history.append(text)
        message.update_times.append(time.monotonic())
        return {"ok": True, "channel": message.channel, "ts": message.ts, "text": text}

    def _chat_startStream(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        channel, text = str(args.get("channel") or ""), str(args.get("markdown_text") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        if team.team_id in self.native_streaming_unavailable:
            return {"ok": False, "error": self.native_streaming_error}
        thread_ts = str(args.get("thread_ts") or "")
        if not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        parent = self.messages.get((channel, thread_ts))
        if parent is None or parent.deleted:
            return {"ok": False, "error": "thread_not_found"}
        if parent.thread_ts not in (None, parent.ts):
            return {"ok": False, "error": "invalid_thread_ts"}
        in_channel = channel[:1] in ("C", "G")
        if in_channel and not (args.get("recipient_user_id") and args.get("recipient_team_id")):
            return {"ok": False, "error": "invalid_arguments"}
        if len(text) > STREAM_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        ts = self._new_ts()
        self.messages[(channel, ts)] = FakeMessage(
            channel,
            ts,
            text,
            thread_ts,
            team.bot_token,
            [text],
            streaming=True,
            stream_started=time.monotonic(),
        )
        self.thread_posted(channel, thread_ts)
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_appendStream(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        return self._stream_call(args, team, stop=False)

    def _chat_stopStream(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        return self._stream_call(args, team, stop=True)

    def _stream_call(self, args: dict[str, Any], team: FakeTeam, *, stop: bool) -> dict[str, Any]:
        message = self.messages.get((str(args.get("channel")), str(args.get("ts"))))
        if message is None or message.deleted or message.token != team.bot_token:
            return {"ok": False, "error": "message_not_found"}
        if not self._still_streaming(message):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        text = str(args.get("markdown_text") or "")
        if not text and not stop:
            return {"ok": False, "error": "invalid_arguments"}
        if len(text) > STREAM_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        message.text += text
        message.history.append(message.text)
        message.update_times.append(time.monotonic())
        message.streaming = not stop
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _still_streaming(self, message: FakeMessage) -> bool:
        """Whether ``message`` is an open stream (one past ``stream_ttl`` is ended here)."""
        if message.streaming and self.stream_ttl is not None:
            assert message.stream_started is not None
            if time.monotonic() - message.stream_started > self.stream_ttl:
                message.streaming = False
        return message.streaming

    def _chat_delete(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        message = self.messages.get((str(args.get("channel")), str(args.get("ts"))))
        if message is None or message.deleted or message.token != team.bot_token:
            return {"ok": False, "error": "message_not_found"}
        message.deleted = True
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _chat_postEphemeral(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        if str(args.get("channel")) in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        self.ephemerals.append({**args, "team_id": team.team_id})
        return {"ok": True, "message_ts": self._new_ts()}

    def _users_info(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None or user["team_id"] != team.team_id:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _views_open(self, args: dict[str, Any], team: FakeTeam) -> dict[str, Any]:
        trigger = str(args.get("trigger_id") or "")
        if not trigger or trigger in self.expired_triggers:
            return {"ok": False, "error": "expired_trigger_id"}
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        view_id = f"V{next(self._ids):08d}"
        self.views.append({"id": view_id, "team_id": team.team_id, **(view or {})})
        return {"ok": True, "view": {"id": view_id, **(view or {})}}

    def _oauth_v2_access(self, args: dict[str, Any], _team: FakeTeam | None) -> dict[str, Any]:
        if (
            args.get("client_id") != self.client_id
            or args.get("client_secret") != self.client_secret
        ):
            return {"ok": False, "error": "invalid_client_id"}
        token = self.oauth_codes.pop(str(args.get("code")), None)
        team = self.teams.get(token or "")
        if team is None:
            return {"ok": False, "error": "invalid_code"}
        return {
            "ok": True,
            "app_id": "AFAKEAPP",
            "authed_user": {"id": "UINSTALLER"},
            "scope": "commands,chat:write,users:read",
            "token_type": "bot",
            "access_token": team.bot_token,
            "bot_user_id": team.bot_user_id,
            "team": {"id": team.team_id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }


# -- what Slack sends -------------------------------------------------------------------------


def signed_headers(
    body: str, secret: str, *, timestamp: int | None = None, retry_num: int | None = None
) -> dict[str, str]:
    """Headers of a request signed as Slack signs them: ``v0=HMAC(v0:ts:body)``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def command_body(
    command: str,
    text: str,
    *,
    team_id: str,
    user_id: str,
    channel_id: str = "C1",
    response_url: str,
    trigger_id: str | None = None,
) -> str:
    """A slash command as Slack posts it (form-encoded)."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": team_id.lower(),
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": "AFAKEAPP",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{time.time_ns()}.trigger",
        }
    )


def event_body(event: dict[str, Any], *, team_id: str, event_id: str) -> str:
    """An Events API callback (JSON)."""
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "api_app_id": "AFAKEAPP",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team_id, "is_bot": True}],
        }
    )
