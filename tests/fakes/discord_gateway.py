"""The gateway half of the fake Discord: one websocket session per shard connection.

It speaks enough of gateway v10 for discord.py 2.x: HELLO, IDENTIFY (token, intents and shard
checked; 4004 and 4014 closes like Discord's), heartbeat ACKs, RESUME, READY with the shard's
guilds as unavailable, then a GUILD_CREATE for each, and dispatches injected by tests.
``compress=zlib-stream`` is honoured with one zlib context per connection, as Discord does.
"""

from __future__ import annotations

import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

HELLO, IDENTIFY, RESUME, HEARTBEAT, HEARTBEAT_ACK, DISPATCH = 10, 2, 6, 1, 11, 0


@dataclass
class GatewaySession:
    ws: web.WebSocketResponse
    compress: bool
    shard: tuple[int, int] = (0, 1)
    intents: int = 0
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    seq: int = 0
    ready: bool = False
    _zlib: Any = field(default_factory=zlib.compressobj)

    def owns(self, guild_id: int) -> bool:
        return (guild_id >> 22) % self.shard[1] == self.shard[0]

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        if self.compress:
            data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        await self.send({"op": DISPATCH, "t": event, "s": self.seq, "d": data})


@dataclass
class GatewayHost:
    """What a session needs from the fake: credentials, guilds, and hooks to record."""

    token: str
    url: Callable[[], str]
    ready_payload: Callable[[GatewaySession], dict[str, Any]]
    guild_creates: Callable[[GatewaySession], list[dict[str, Any]]]
    #: The intents bits this application may use (others close the socket with 4014).
    allowed_intents: Callable[[], int]
    on_change: Callable[[], None]
    sessions: list[GatewaySession] = field(default_factory=list)
    identifies: list[dict[str, Any]] = field(default_factory=list)
    #: session_id -> (shard, intents), so a RESUME continues the same shard.
    known: dict[str, tuple[tuple[int, int], int]] = field(default_factory=dict)


async def serve(host: GatewayHost, request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    session = GatewaySession(ws, compress=request.query.get("compress") == "zlib-stream")
    await session.send({"op": HELLO, "d": {"heartbeat_interval": 41_250}, "s": None, "t": None})
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            await _handle(host, session, json.loads(msg.data))
            if ws.closed:
                break
    finally:
        if session in host.sessions:
            host.sessions.remove(session)
        host.on_change()
    return ws


async def _handle(host: GatewayHost, session: GatewaySession, frame: dict[str, Any]) -> None:
    op, data = frame.get("op"), frame.get("d")
    if op == HEARTBEAT:
        await session.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
    elif op == IDENTIFY:
        host.identifies.append(data)
        if data.get("token") != host.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & ~host.allowed_intents():
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session.intents = intents
        shard = data.get("shard") or [0, 1]
        session.shard = (int(shard[0]), int(shard[1]))
        await session.dispatch("READY", host.ready_payload(session))
        for guild in host.guild_creates(session):
            await session.dispatch("GUILD_CREATE", guild)
        session.ready = True
        host.sessions.append(session)
        host.known[session.session_id] = (session.shard, session.intents)
        host.on_change()
    elif op == RESUME:
        known = host.known.get(data.get("session_id", ""))
        if known is None or data.get("token") != host.token:
            await session.send({"op": 9, "d": False, "s": None, "t": None})  # invalid session
            return
        session.session_id = data["session_id"]
        session.shard, session.intents = known
        session.seq = int(data.get("seq") or 0)
        session.ready = True
        host.sessions.append(session)
        await session.dispatch("RESUMED", {})
        host.on_change()
