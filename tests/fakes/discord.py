"""A small, honest fake of Discord on loopback: REST (aiohttp.web) plus the gateway websocket.

Point discord.py at it with ``DISCORD_API_BASE=fake.api_base`` and
``DISCORD_GATEWAY_URL=fake.gateway_url``. Every REST call is recorded in ``calls``; tests drive
the bot by injecting gateway dispatches and then wait (without sleeping) on what it sent::

    async with FakeDiscord(guilds=[guild]) as fake:
        ix = await fake.slash(guild, guild.text_channel, alice, "chat", prompt="hi")
        await fake.wait_for(lambda: ix.original and "-#" in ix.original["content"])
        fake.rate_limit("PATCH", r"/messages/@original", retry_after=0.2)   # one 429

It enforces what a bot must respect: the interaction callback within 3 s and only once, the
2,000-character message limit, at most 25 autocomplete choices, a token on bot routes, and
the Message Content intent (a message that does not mention the bot arrives with empty
content when the intent is missing). Module layout: payload shapes live in
``discord_payloads``, the websocket in ``discord_gateway``, REST routes in ``discord_rest``
and ``discord_interactions``, members' attached files (the CDN) in ``discord_cdn``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.discord_cdn import CdnRoutes
from tests.fakes.discord_gateway import GatewayHost, GatewaySession, serve
from tests.fakes.discord_interactions import FakeInteraction, InteractionRoutes
from tests.fakes.discord_payloads import (
    MESSAGE_CONTENT_INTENT,
    FakeChannel,
    FakeGuild,
    FakeUser,
    interaction,
    message,
)
from tests.fakes.discord_rest import Call

__all__ = ["Call", "FakeChannel", "FakeDiscord", "FakeGuild", "FakeInteraction", "FakeUser"]

API_PREFIX = "/api/v10"
DEFAULT_TOKEN = "fake-bot-token"
ALL_INTENTS = (1 << 26) - 1
T = TypeVar("T")


class FakeDiscord(InteractionRoutes, CdnRoutes):
    def __init__(
        self,
        *,
        guilds: list[FakeGuild] | None = None,
        token: str = DEFAULT_TOKEN,
        message_content_allowed: bool = True,
        recommended_shards: int = 1,
    ) -> None:
        super().__init__()
        self._init_cdn()
        self.token = token
        self.guilds: dict[int, FakeGuild] = {g.id: g for g in guilds or [FakeGuild("Acme")]}
        self.bot = FakeUser("routerbot", bot=True)
        self.application_id = self.bot.id
        self.message_content_allowed = message_content_allowed
        self.recommended_shards = recommended_shards
        self.base_url = ""
        self.gateway = GatewayHost(
            token=token,
            url=lambda: self.gateway_url,
            ready_payload=self._ready,
            guild_creates=lambda s: [g.payload(self.bot) for g in self._guilds_of(s)],
            allowed_intents=self._allowed_intents,
            on_change=self.notify,
        )
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    # ---- lifecycle ----------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/gateway", self._gateway_socket)
        self.add_routes(app, API_PREFIX)
        self.add_cdn_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        host, port = server.sockets[0].getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        return self.api_base

    async def _gateway_socket(self, request: web.Request) -> web.WebSocketResponse:
        return await serve(self.gateway, request)

    async def stop(self) -> None:
        for session in list(self.gateway.sessions):
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- waiting (no sleeps) -------------------------------------------------------------

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self, predicate: Callable[[], T], *, timeout: float = 10.0, what: str = "a condition"
    ) -> T:
        """Re-check ``predicate`` whenever the fake sees a call or a gateway change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.5))

    async def wait_ready(self, shards: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(
            lambda: len([s for s in self.gateway.sessions if s.ready]) >= shards,
            timeout=timeout,
            what=f"{shards} identified gateway session(s)",
        )

    # ---- driving the bot ----------------------------------------------------------------

    async def slash(
        self,
        guild: FakeGuild,
        channel: FakeChannel,
        user: FakeUser,
        command: str,
        /,
        **options: Any,
    ) -> FakeInteraction:
        """``/command [subcommand] option=value…``, typed by the registered schema."""
        data = self.command_data(guild, command, options)
        return await self._interact(2, guild, channel, user, data)

    async def autocomplete(
        self,
        guild: FakeGuild,
        channel: FakeChannel,
        user: FakeUser,
        command: str,
        /,
        focused: str,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """Type into option ``focused``; returns the choices the bot answered with."""
        data = self.command_data(guild, command, options, focused=focused)
        ix = await self._interact(4, guild, channel, user, data)
        await self.wait_for(lambda: ix.response_type is not None, what="autocomplete choices")
        assert ix.response_type == 8, f"autocomplete answered with type {ix.response_type}"
        choices: list[dict[str, Any]] = ix.response_data.get("choices", [])
        return choices

    async def submit_modal(self, shown: FakeInteraction, **values: str) -> FakeInteraction:
        """Fill in the modal ``shown`` opened (by component label or custom_id) and submit."""
        assert shown.response_type == 9, "that interaction did not open a modal"
        form = shown.response_data
        components = [_filled(row, values) for row in form["components"]]
        data = {"custom_id": form["custom_id"], "components": components}
        guild, channel, user = shown.guild, shown.channel, shown.user
        return await self._interact(5, guild, channel, user, data)

    async def post_message(
        self,
        guild: FakeGuild,
        channel: FakeChannel,
        user: FakeUser,
        content: str,
        *,
        reply_to: dict[str, Any] | None = None,
        ping: bool = True,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A member's message (a reply to ``reply_to`` when given) sent as MESSAGE_CREATE,
        with ``attachments`` (from :meth:`member_file`) when given."""
        mentions = [self.bot] if (reply_to and ping) or f"<@{self.bot.id}>" in content else []
        data = message(
            channel_id=channel.id,
            author=user,
            content=content,
            guild_id=guild.id,
            reference=reply_to,
            mentions=mentions,
        )
        data["attachments"] = list(attachments or [])
        data["member"] = {
            "roles": [],
            "joined_at": data["timestamp"],
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        self.messages[int(data["id"])] = data
        session = self._session_for(guild)
        if not session.intents & MESSAGE_CONTENT_INTENT and not mentions:
            # What Discord sends without the intent: no content, no attachments.
            data = data | {"content": "", "attachments": []}
        await session.dispatch("MESSAGE_CREATE", data)
        return data

    async def _interact(
        self, kind: int, guild: FakeGuild, channel: FakeChannel, user: FakeUser, data: Any
    ) -> FakeInteraction:
        payload = interaction(
            kind=kind,
            application_id=self.application_id,
            guild=guild,
            channel=channel,
            user=user,
            data=data,
        )
        ix = FakeInteraction(payload, guild, channel, user, asyncio.get_running_loop().time())
        self.interactions[ix.token] = ix
        await self._session_for(guild).dispatch("INTERACTION_CREATE", payload)
        return ix

    def _session_for(self, guild: FakeGuild) -> GatewaySession:
        for session in self.gateway.sessions:
            if session.ready and session.owns(guild.id):
                return session
        raise AssertionError(f"no gateway session serves guild {guild.name}")

    # ---- gateway payloads ---------------------------------------------------------------

    def _guilds_of(self, session: GatewaySession) -> list[FakeGuild]:
        return [g for g in self.guilds.values() if session.owns(g.id)]

    def _allowed_intents(self) -> int:
        allowed = ALL_INTENTS
        if not self.message_content_allowed:
            allowed &= ~MESSAGE_CONTENT_INTENT
        return allowed

    def _ready(self, session: GatewaySession) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.bot.payload(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self._guilds_of(session)],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 0},
        }


def _filled(component: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The submitted form of a modal component, as Discord sends it back."""
    if component["type"] == 1:  # action row
        return {"type": 1, "components": [_filled(c, values) for c in component["components"]]}
    if component["type"] == 18:  # label wrapping one component
        inner = component["component"]
        value = values.get(component["label"], values.get(inner.get("custom_id", ""), ""))
        return {"type": 18, "component": {**_filled(inner, {}), "value": value}}
    value = values.get(component.get("label") or "", values.get(component.get("custom_id", "")))
    return {
        "type": component["type"],
        "custom_id": component.get("custom_id"),
        "value": value or "",
    }
