"""The floor under ``slack_load.py``: the least any Python bot can do for a ``/chat``.

    uv run python benchmarks/slack_load.py --reference

A bare aiohttp server, not routerbot: it checks the signature, acks, posts the question,
streams the fake upstream's answer, and edits the message once with a footer. No framework,
no database, no budgets, no de-duplication, no history, no interim edits, no error handling.
Whatever overhead the load benchmark measures for it is the harness's and the machine's own
(the client, the fake Slack, the fake upstream and the bot share the same CPUs), so it is the
line routerbot's figures are read against.

Configured by the same environment as ``routerbot slack``: ``PORT``, ``SLACK_API_URL``,
``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``, ``OPENROUTER_BASE_URL`` and
``REFERENCE_API_KEY`` (the key the fake upstream accepts).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

MODEL = "anthropic/claude-3.5-sonnet"


class Responder:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.api = os.environ["SLACK_API_URL"]
        self.slack_auth = {"Authorization": f"Bearer {os.environ['SLACK_BOT_TOKEN']}"}
        self.upstream = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
        self.upstream_auth = {"Authorization": f"Bearer {os.environ['REFERENCE_API_KEY']}"}
        self.verifier = SignatureVerifier(os.environ["SLACK_SIGNING_SECRET"])
        self.tasks: set[asyncio.Task[None]] = set()

    async def slack(self, method: str, **args: Any) -> dict[str, Any]:
        async with self.session.post(self.api + method, json=args, headers=self.slack_auth) as r:
            result: dict[str, Any] = await r.json()
            return result

    async def events(self, request: web.Request) -> web.Response:
        raw = await request.text()
        if not self.verifier.is_valid(
            body=raw,
            timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
        ):
            return web.Response(status=401)
        form = dict(parse_qsl(raw))
        work = self.acknowledge(form) if form.get("command") != "/chat" else self.chat(form)
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.Response(status=200)

    async def acknowledge(self, form: dict[str, str]) -> None:
        async with self.session.post(form["response_url"], json={"text": "ok"}) as r:
            await r.read()

    async def chat(self, form: dict[str, str]) -> None:
        started = time.monotonic()
        header = f"<@{form['user_id']}> asked `{MODEL}`:\n&gt; {form['text']}\n\n"
        posted = await self.slack("chat.postMessage", channel=form["channel_id"], text=header)
        prompt = {"role": "user", "content": form["text"]}
        body = {"model": MODEL, "stream": True, "messages": [prompt]}
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
            f"{MODEL} · {usage.get('prompt_tokens', 0)} in · {usage.get('completion_tokens', 0)}"
            f" out · ${usage.get('cost', 0)} · {time.monotonic() - started:.1f} s"
        )
        text = header + "".join(parts) + "\n\n" + footer
        await self.slack("chat.update", channel=form["channel_id"], ts=posted["ts"], text=text)


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        responder = Responder(session)
        app = web.Application()
        app.router.add_post("/slack/events", responder.events)
        app.router.add_get("/healthz", lambda _request: _ok())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(os.environ["PORT"])).start()
        await stop.wait()
        await runner.cleanup()


async def _ok() -> web.Response:
    return web.json_response({"status": "ok"})


if __name__ == "__main__":
    asyncio.run(main())
