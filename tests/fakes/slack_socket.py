"""A small, honest fake of Slack's Socket Mode, served by :class:`~tests.fakes.slack.FakeSlack`.

Attach it before the fake Web API starts, so ``SLACK_API_URL`` serves both::

    slack = FakeSlack()
    socket = FakeSocketMode(slack)          # adds apps.connections.open and /link/
    async with slack:
        ...

What it models (as ``slack_sdk.socket_mode`` and bolt's Socket Mode adapter expect it):

* ``apps.connections.open`` takes an app-level token (``xapp-…``, Bearer) and answers
  ``{"ok": true, "url": "ws://127.0.0.1:<port>/link/?ticket=…&app_id=…"}``; no token is
  ``not_authed``, a bot or user token ``not_allowed_token_type``, an unknown one
  ``invalid_auth``. Each ticket opens one connection.
* ``GET /link/?ticket=…`` upgrades to a WebSocket and sends ``{"type": "hello", …}`` first
  (``num_connections``, ``debug_info``, ``connection_info.app_id``). An unknown or used ticket
  is refused with HTTP 401 before the upgrade.
* Envelopes are pushed by the test (:meth:`FakeSocketMode.send`, built by
  :func:`slash_command_envelope`, :func:`events_api_envelope`, :func:`interactive_envelope`)
  to the newest open connection; every ack (``{"envelope_id", "payload"?}``) is recorded with
  its arrival time and connection, and so is anything else the client sends.
* :meth:`FakeSocketMode.disconnect` sends ``{"type": "disconnect", "reason": …}``, as Slack
  does when it refreshes a connection, and the socket gets closed: by the client as it moves
  to a new one, else by Slack's side after a grace period (at once with ``grace=0``). The
  client must call ``apps.connections.open`` again. :meth:`FakeSocketMode.drop` closes a
  socket without a word.
* Client pings are answered with a pong carrying the same data (and counted).

It does not re-send unacknowledged envelopes by itself: a test re-delivers one explicitly with
``retry_attempt``/``retry_reason``, which keeps timing out of the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.slack import FakeSlack, command_body

__all__ = [
    "Ack",
    "Delivery",
    "FakeSocketMode",
    "SocketConnection",
    "events_api_envelope",
    "interactive_envelope",
    "slash_command_envelope",
]

LINK_PATH = "/link/"
DEFAULT_APP_TOKEN = "xapp-1-AFAKEAPP-1-0123456789abcdef0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Ack:
    envelope_id: str
    payload: dict[str, Any] | None
    #: ``time.monotonic()`` when the ack arrived.
    at: float
    #: Index (in :attr:`FakeSocketMode.connections`) of the connection it came on.
    connection: int


@dataclass(frozen=True, slots=True)
class Delivery:
    envelope: dict[str, Any]
    at: float
    connection: int

    @property
    def envelope_id(self) -> str:
        return str(self.envelope["envelope_id"])


@dataclass(slots=True)
class SocketConnection:
    index: int
    ticket: str
    opened_at: float
    ws: web.WebSocketResponse
    #: Every JSON message sent to the client, hello and disconnects included.
    sent: list[dict[str, Any]] = field(default_factory=list)
    #: Every text frame from the client that is not an ack (parsed if JSON, else raw).
    other: list[Any] = field(default_factory=list)
    pings: int = 0
    pongs: int = 0
    closed_at: float | None = None
    #: Who closed it: ``"server"`` (Slack's side: disconnect, drop, shutdown) or ``"client"``.
    closed_by: str | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed


class FakeSocketMode:
    def __init__(
        self,
        slack: FakeSlack,
        *,
        app_token: str = DEFAULT_APP_TOKEN,
        app_id: str = "AFAKEAPP",
    ) -> None:
        self.slack = slack
        self.app_token = app_token
        self.app_id = app_id
        self.app_tokens = {app_token}
        self.connections: list[SocketConnection] = []
        self.deliveries: list[Delivery] = []
        self.acks: list[Ack] = []
        #: Tickets presented to ``/link/`` that were unknown or already used.
        self.refused_tickets: list[str] = []
        self._tickets: dict[str, float] = {}
        self._changed = asyncio.Condition()
        slack.token_methods["apps.connections.open"] = self._apps_connections_open
        slack.route_hooks.append(self._add_routes)

    # -- inspection -----------------------------------------------------------------------------

    @property
    def opens(self) -> int:
        """Successful ``apps.connections.open`` calls."""
        return sum(1 for call in self.slack.calls_to("apps.connections.open") if call.error is None)

    @property
    def open_connections(self) -> list[SocketConnection]:
        return [conn for conn in self.connections if conn.open]

    def acks_for(self, envelope_id: str) -> list[Ack]:
        return [ack for ack in self.acks if ack.envelope_id == envelope_id]

    def ack_seconds(self, envelope_id: str) -> float:
        """Seconds from sending the envelope to its first ack."""
        [delivery] = [d for d in self.deliveries if d.envelope_id == envelope_id]
        first = self.acks_for(envelope_id)[0]
        return first.at - delivery.at

    def unknown_acks(self) -> list[Ack]:
        """Acks naming an envelope this fake never sent."""
        sent = {d.envelope_id for d in self.deliveries}
        return [ack for ack in self.acks if ack.envelope_id not in sent]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> SocketConnection:
        """Wait until ``count`` connections have been opened and the newest is open."""
        await self.wait_for(
            lambda: len(self.connections) >= count and self.connections[-1].open, timeout
        )
        return self.connections[-1]

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        await self.wait_for(lambda: bool(self.acks_for(envelope_id)), timeout)
        return self.acks_for(envelope_id)[0]

    # -- what Slack does ------------------------------------------------------------------------

    async def send(self, envelope: dict[str, Any]) -> Delivery:
        """Deliver ``envelope`` on the newest open connection."""
        conns = self.open_connections
        if not conns:
            raise AssertionError("no open Socket Mode connection to deliver to")
        conn = conns[-1]
        await self._send_json(conn, envelope)
        delivery = Delivery(envelope, time.monotonic(), conn.index)
        self.deliveries.append(delivery)
        return delivery

    async def disconnect(
        self, reason: str = "refresh_requested", *, close: bool = True, grace: float = 5.0
    ) -> SocketConnection:
        """Ask the newest connection's client to reconnect. With ``close``, the socket is
        closed: by the client when it moves (slack_sdk closes the old socket before opening the
        new one), else by Slack's side after ``grace`` seconds (``grace=0``: at once, racing
        the client's own reconnect)."""
        conn = self.open_connections[-1]
        await self._send_json(
            conn,
            {"type": "disconnect", "reason": reason, "debug_info": {"host": self._host(conn)}},
        )
        if close:
            if grace > 0:
                with contextlib.suppress(TimeoutError):
                    await self.wait_for(lambda: not conn.open, grace)
            if conn.open:
                conn.closed_by = "server"
                await conn.ws.close(code=1000, message=b"")
                await self._mark_closed(conn)
        return conn

    async def drop(self) -> SocketConnection:
        """Close the newest connection without a word, as a network or server fault would."""
        conn = self.open_connections[-1]
        conn.closed_by = "server"
        await conn.ws.close(code=1011, message=b"")
        await self._mark_closed(conn)
        return conn

    async def close_all(self) -> None:
        for conn in self.open_connections:
            conn.closed_by = conn.closed_by or "server"
            await conn.ws.close(code=1001, message=b"server shutdown")
            await self._mark_closed(conn)

    # -- Web API --------------------------------------------------------------------------------

    def _apps_connections_open(self, _args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if not token:
            return {"ok": False, "error": "not_authed"}
        if not token.startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if token not in self.app_tokens:
            return {"ok": False, "error": "invalid_auth"}
        ticket = uuid.uuid4().hex
        self._tickets[ticket] = time.monotonic()
        ws_root = "ws" + self.slack.root_url.removeprefix("http")
        return {"ok": True, "url": f"{ws_root}{LINK_PATH}?ticket={ticket}&app_id={self.app_id}"}

    # -- WebSocket ------------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get(LINK_PATH, self._link)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self.close_all()

    @staticmethod
    def _host(conn: SocketConnection) -> str:
        return f"applink-fake-{conn.index + 1}"

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self._tickets.pop(ticket, None) is None:
            self.refused_tickets.append(ticket)
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = SocketConnection(len(self.connections), ticket, time.monotonic(), ws)
        self.connections.append(conn)
        await self._send_json(
            conn,
            {
                "type": "hello",
                "num_connections": len(self.open_connections),
                "debug_info": {
                    "host": self._host(conn),
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            },
        )
        await self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    conn.pings += 1
                    await ws.pong(msg.data)
                    await self._notify()
                elif msg.type == WSMsgType.PONG:
                    conn.pongs += 1
                elif msg.type == WSMsgType.TEXT:
                    await self._received(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.other.append(msg.data)
        finally:
            conn.closed_by = conn.closed_by or "client"
            await self._mark_closed(conn)
        return ws

    async def _received(self, conn: SocketConnection, raw: str) -> None:
        at = time.monotonic()
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if isinstance(message, dict) and "envelope_id" in message:
            payload = message.get("payload")
            self.acks.append(
                Ack(
                    str(message["envelope_id"]),
                    payload if isinstance(payload, dict) else None,
                    at,
                    conn.index,
                )
            )
        else:
            conn.other.append(raw if message is None else message)
        await self._notify()

    async def _send_json(self, conn: SocketConnection, message: dict[str, Any]) -> None:
        conn.sent.append(message)
        await conn.ws.send_str(json.dumps(message))

    async def _mark_closed(self, conn: SocketConnection) -> None:
        if conn.closed_at is None:
            conn.closed_at = time.monotonic()
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


# -- what Slack sends -------------------------------------------------------------------------


def _envelope(
    kind: str,
    payload: dict[str, Any],
    *,
    accepts_response_payload: bool,
    retry_attempt: int | None = None,
    retry_reason: str | None = None,
    envelope_id: str | None = None,
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload,
        "type": kind,
        "accepts_response_payload": accepts_response_payload,
    }
    if retry_attempt is not None:
        envelope["retry_attempt"] = retry_attempt
        envelope["retry_reason"] = retry_reason or ""
    return envelope


def slash_command_envelope(
    command: str,
    text: str,
    *,
    team_id: str,
    user_id: str,
    channel_id: str = "C1",
    response_url: str,
    trigger_id: str | None = None,
    envelope_id: str | None = None,
) -> dict[str, Any]:
    """A slash command: the same fields (all strings) Slack would form-post over HTTP."""
    body = command_body(
        command,
        text,
        team_id=team_id,
        user_id=user_id,
        channel_id=channel_id,
        response_url=response_url,
        trigger_id=trigger_id,
    )
    return _envelope(
        "slash_commands",
        dict(parse_qsl(body, keep_blank_values=True)),
        accepts_response_payload=True,
        envelope_id=envelope_id,
    )


def events_api_envelope(
    event: dict[str, Any],
    *,
    team_id: str,
    event_id: str,
    event_time: int | None = None,
    retry_attempt: int = 0,
    retry_reason: str = "",
    envelope_id: str | None = None,
) -> dict[str, Any]:
    """An Events API callback. First deliveries carry ``retry_attempt: 0`` and an empty
    ``retry_reason``; a re-delivery has a new ``envelope_id`` and the same ``event_id``."""
    payload = {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "api_app_id": "AFAKEAPP",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": f"UBOT{team_id}",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }
    return _envelope(
        "events_api",
        payload,
        accepts_response_payload=False,
        retry_attempt=retry_attempt,
        retry_reason=retry_reason,
        envelope_id=envelope_id,
    )


def interactive_envelope(
    payload: dict[str, Any], *, envelope_id: str | None = None
) -> dict[str, Any]:
    """An interaction; a ``view_submission``'s ack may carry a ``response_action``."""
    return _envelope(
        "interactive",
        payload,
        accepts_response_payload=payload.get("type") == "view_submission",
        envelope_id=envelope_id,
    )
