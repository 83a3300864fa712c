"""The floor under ``discord_load.py``: the least any Python bot can do for a Discord ``/chat``.

    uv run python benchmarks/discord_load.py --reference

A bare aiohttp gateway client, not routerbot: it identifies, registers ``/chat``, and for each
interaction defers it (callback type 5), streams the fake upstream's answer and edits the
original response once with the answer and a footer. No discord.py, no database, no budgets, no
history, no interim edits, no error handling, no heartbeat beyond what a short run needs.
Whatever overhead the benchmark measures for it is the harness's and the machine's own.

Configured by environment: ``DISCORD_TOKEN``, ``DISCORD_API_BASE``, ``DISCORD_GATEWAY_URL``,
``OPENROUTER_BASE_URL`` and ``REFERENCE_API_KEY`` (the key the fake upstream accepts).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import aiohttp

MODEL = "anthropic/claude-3.5-sonnet"
CHAT_COMMAND = {
    "name": "chat",
    "description": "Ask a model",
    "options": [{"type": 3, "name": "prompt", "description": "What to ask", "required": True}],
}


class Responder:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.api = os.environ["DISCORD_API_BASE"].rstrip("/")
        self.auth = {"Authorization": f"Bot {os.environ['DISCORD_TOKEN']}"}
        self.upstream = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
        self.upstream_auth = {"Authorization": f"Bearer {os.environ['REFERENCE_API_KEY']}"}
        self.application_id = ""
        self.tasks: set[asyncio.Task[None]] = set()

    async def rest(self, method: str, path: str, body: Any) -> None:
        async with self.session.request(
            method, self.api + path, json=body, headers=self.auth
        ) as response:
            await response.read()

    async def gateway(self, stop: asyncio.Event) -> None:
        url = os.environ["DISCORD_GATEWAY_URL"] + "?v=10&encoding=json"
        async with self.session.ws_connect(url, max_msg_size=0) as ws:
            async for message in ws:
                frame = json.loads(message.data)
                if frame["op"] == 10:  # HELLO
                    await ws.send_json(
                        {"op": 2, "d": {"token": os.environ["DISCORD_TOKEN"], "intents": 1,
                                        "properties": {"os": "linux", "browser": "ref",
                                                       "device": "ref"}}}
                    )  # fmt: skip
                elif frame["op"] == 0 and frame["t"] == "READY":
                    self.application_id = frame["d"]["application"]["id"]
                    path = f"/applications/{self.application_id}/commands"
                    await self.rest("PUT", path, [CHAT_COMMAND])
                elif frame["op"] == 0 and frame["t"] == "INTERACTION_CREATE":
                    task = asyncio.create_task(self.interaction(frame["d"]))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                if stop.is_set():
                    break

    async def interaction(self, ix: dict[str, Any]) -> None:
        started = time.monotonic()
        callback = f"/interactions/{ix['id']}/{ix['token']}/callback"
        options = {o["name"]: o["value"] for o in ix["data"].get("options") or ()}
        if ix["data"]["name"] != "chat":
            await self.rest("POST", callback, {"type": 4, "data": {"content": "ok"}})
            return
        await self.rest("POST", callback, {"type": 5})
        body = {"model": MODEL, "stream": True,
                "messages": [{"role": "user", "content": options["prompt"]}]}  # fmt: skip
        parts: list[str] = []
        usage: dict[str, Any] = {}
        async with self.session.post(self.upstream, json=body, headers=self.upstream_auth) as r:
            async for line in r.content:
                if not line.startswith(b"data: "):
                    continue
                if line.startswith(b"data: [DONE]"):
                    break
                chunk = json.loads(line[6:])
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or ():
                    parts.append((choice.get("delta") or {}).get("content") or "")
        footer = (
            f"-# {MODEL} · {usage.get('prompt_tokens', 0)} in · "
            f"{usage.get('completion_tokens', 0)} out · ${usage.get('cost', 0)} · "
            f"{time.monotonic() - started:.1f} s"
        )
        path = f"/webhooks/{self.application_id}/{ix['token']}/messages/@original"
        await self.rest("PATCH", path, {"content": "".join(parts) + "\n" + footer,
                                        "allowed_mentions": {"parse": []}})  # fmt: skip


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        responder = Responder(session)
        gateway = asyncio.create_task(responder.gateway(stop))
        await stop.wait()
        gateway.cancel()


if __name__ == "__main__":
    asyncio.run(main())
