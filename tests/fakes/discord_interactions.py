"""Interactions in the fake Discord: the callback (within 3 s, once), the original response
and follow-ups through the interaction webhook, and typed command data for tests to inject."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord_payloads import (
    EPHEMERAL,
    LOADING,
    FakeChannel,
    FakeGuild,
    FakeUser,
    member,
    message,
)
from tests.fakes.discord_rest import (
    UPLOADS,
    RestRoutes,
    content_of,
    error,
    json_response,
    too_long,
)

CALLBACK_DEADLINE = 3.0
#: Application command option type USER.
USER_OPTION = 6


@dataclass
class FakeInteraction:
    payload: dict[str, Any]
    guild: FakeGuild
    channel: FakeChannel
    user: FakeUser
    dispatched_at: float
    response_type: int | None = None
    response_data: dict[str, Any] = field(default_factory=dict)
    responded_after: float | None = None
    original: dict[str, Any] | None = None
    followups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def ephemeral(self) -> bool:
        return bool(self.response_data.get("flags", 0) & EPHEMERAL)

    def messages(self) -> list[dict[str, Any]]:
        """The original response (unless deleted) and the follow-ups, in order."""
        first = [self.original] if self.original and not self.original.get("deleted") else []
        return first + [m for m in self.followups if not m.get("deleted")]

    def text(self) -> str:
        return "\n".join(m["content"] for m in self.messages())


class InteractionRoutes(RestRoutes):
    def __init__(self) -> None:
        super().__init__()
        self.interactions: dict[str, FakeInteraction] = {}

    def add_routes(self, app: web.Application, prefix: str) -> None:
        super().add_routes(app, prefix)
        hook = prefix + "/webhooks/{app}/{token}"
        app.router.add_post(prefix + "/interactions/{id}/{token}/callback", self._callback)
        app.router.add_post(hook, self._followup)
        app.router.add_route("*", hook + "/messages/{message}", self._webhook_message)

    def registered(self, guild: FakeGuild, name: str) -> dict[str, Any]:
        for cmd in self.guild_commands.get(guild.id, []) + self.commands:
            if cmd["name"] == name:
                return cmd
        raise AssertionError(f"/{name} is not registered")

    def command_data(
        self, guild: FakeGuild, command: str, options: dict[str, Any], focused: str | None = None
    ) -> dict[str, Any]:
        """INTERACTION_CREATE ``data`` for ``command`` ("models add"), typed by its schema."""
        name, *subs = command.split()
        schema = self.registered(guild, name)
        data: dict[str, Any] = {"id": schema["id"], "name": name, "type": 1}
        container, level = data, schema
        for sub in subs:
            level = next(o for o in level.get("options", []) if o["name"] == sub)
            child: dict[str, Any] = {"type": level["type"], "name": sub}
            container.setdefault("options", []).append(child)
            container = child
        container["options"] = container.get("options", [])
        for key, value in options.items():
            spec = next((o for o in level.get("options", []) if o["name"] == key), None)
            assert spec is not None, f"/{command} has no option {key}"
            if spec["type"] == 11 and isinstance(value, dict):
                # An attachment option: its value is an id resolved in ``data.resolved``.
                resolved = data.setdefault("resolved", {}).setdefault("attachments", {})
                resolved[value["id"]] = value
                value = value["id"]
            elif spec["type"] == USER_OPTION and isinstance(value, FakeUser):
                # Discord sends a user option as an id, with the user and member resolved.
                resolved = data.setdefault("resolved", {})
                resolved.setdefault("users", {})[str(value.id)] = value.payload()
                their = {k: v for k, v in member(value).items() if k != "user"}
                resolved.setdefault("members", {})[str(value.id)] = their
                value = str(value.id)
            option: dict[str, Any] = {"type": spec["type"], "name": key, "value": value}
            if key == focused:
                option["focused"] = True
            container["options"].append(option)
        if guild.id in self.guild_commands:
            data["guild_id"] = str(guild.id)
        return data

    async def _callback(self, request: web.Request) -> web.Response:
        ix = self.interactions.get(request.match_info["token"])
        if ix is None or str(ix.id) != request.match_info["id"]:
            return error(404, 10062, "Unknown interaction")
        elapsed = asyncio.get_running_loop().time() - ix.dispatched_at
        if elapsed > CALLBACK_DEADLINE:
            return error(404, 10062, "Unknown interaction")
        if ix.response_type is not None:
            return error(400, 40060, "Interaction has already been acknowledged.")
        body = await self._body(request)
        kind, data = body.get("type"), body.get("data") or {}
        if (problem := too_long(data)) is not None:
            return problem
        if kind == 8 and len(data.get("choices", [])) > 25:
            return error(400, 50035, "Invalid Form Body (choices: at most 25)")
        ix.response_type, ix.response_data, ix.responded_after = kind, data, elapsed
        if kind in (4, 5):
            flags = data.get("flags", 0) | (LOADING if kind == 5 else 0)
            ix.original = self._webhook_message_payload(ix, data.get("content", ""), flags)
        if "with_response" not in request.query:
            return web.Response(status=204)
        info: dict[str, Any] = {"id": str(ix.id), "type": ix.payload["type"]}
        result: dict[str, Any] = {"interaction": info}
        if ix.original is not None:
            info |= {
                "response_message_id": ix.original["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(data.get("flags", 0) & EPHEMERAL),
            }
            result["resource"] = {"type": kind, "message": ix.original}
        return json_response(result)

    def _webhook_message_payload(
        self, ix: FakeInteraction, content: str, flags: int
    ) -> dict[str, Any]:
        data = message(
            channel_id=ix.channel.id,
            author=self.bot,
            content=content,
            guild_id=ix.guild.id,
            flags=flags,
            webhook_id=self.application_id,
        )
        self.messages[int(data["id"])] = data
        return data

    def _interaction_of(self, request: web.Request) -> FakeInteraction | None:
        ix = self.interactions.get(request.match_info["token"])
        if ix is None or request.match_info["app"] != str(self.application_id):
            return None
        return ix if ix.response_type is not None else None

    async def _followup(self, request: web.Request) -> web.Response:
        ix = self._interaction_of(request)
        if ix is None:
            return error(404, 10015, "Unknown Webhook")
        body = await self._body(request)
        if (problem := too_long(body)) is not None:
            return problem
        if not (content_of(body) or body.get("embeds") or request.get(UPLOADS)):
            return error(400, 50006, "Cannot send an empty message")
        sent = self._webhook_message_payload(ix, body.get("content", ""), body.get("flags", 0))
        self.attach(sent, body, request)
        ix.followups.append(sent)
        wait = request.query.get("wait", "0").lower() in ("1", "true")
        return json_response(sent) if wait else web.Response(status=204)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        ix = self._interaction_of(request)
        if ix is None:
            return error(404, 10015, "Unknown Webhook")
        wanted = request.match_info["message"]
        candidates = ([ix.original] if ix.original else []) + ix.followups
        if wanted == "@original":
            found = ix.original
        else:
            found = next((m for m in candidates if m["id"] == wanted), None)
        if found is None or found.get("deleted"):
            return error(404, 10008, "Unknown Message")
        return await self._message_op(request, found)
