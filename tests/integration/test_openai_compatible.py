"""Pointing OPENROUTER_BASE_URL at a plain OpenAI-compatible server (llama.cpp, vLLM, Ollama).

Such a server has no ``/key``, no ``/model/{id}`` and no ``usage.cost``; routerbot must still
verify keys, add models from the server's own ``/models`` list, stream, and say the cost is
unknown rather than invent one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.config import Settings
from bot.core.replies import ChatCompleted, ErrorReply, Invocation, TextReply
from bot.runtime import build_runtime
from storage.crypto import generate_key

MODEL = "llama3.2:3b"


class LocalServer:
    def __init__(self) -> None:
        self.seen_auth: list[str | None] = []

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen_auth.append(request.headers.get("Authorization"))
        if body["model"] != MODEL:
            return web.json_response(
                {"error": {"message": "model not found", "code": 404}}, status=404
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ("local", " answer"):
            chunk = {
                "id": "c1",
                "model": MODEL,
                "choices": [{"index": 0, "delta": {"content": word}}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        last = {
            "id": "c1",
            "model": MODEL,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }
        await response.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
        return response


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[str, LocalServer]]:
    server = LocalServer()
    app = web.Application()
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/chat/completions", server.chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", server
    finally:
        await runner.cleanup()


async def test_any_openai_compatible_base_url_works(
    local_server: tuple[str, LocalServer], tmp_path: Path
) -> None:
    base_url, server = local_server
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'rb.db'}",
        routerbot_secret_key=SecretStr(generate_key()),
        openrouter_base_url=base_url,
        routerbot_data_dir=tmp_path,
    )
    rt, _ = await build_runtime(settings)
    admin = Invocation("console", "lab", "console", "op", is_admin=True)

    async def run(text: str) -> list[object]:
        return [r async for r in rt.dispatcher.run_text(admin, text)]

    try:
        saved = await run("/apikey set local-key-123456")
        assert isinstance(saved[0], TextReply), saved
        added = await run(f"/models add {MODEL}")
        assert isinstance(added[0], TextReply), added
        unknown = await run("/models add nothing-here")
        assert isinstance(unknown[0], ErrorReply) and "`nothing-here`" in unknown[0].text
        await run(f"/models default {MODEL}")
        done = (await run("/chat hi there"))[-1]
        assert isinstance(done, ChatCompleted)
        assert done.text == "local answer"
        assert done.footer.startswith(f"{MODEL} · 7 in · 2 out · cost unknown")
        assert server.seen_auth == ["Bearer local-key-123456"]
    finally:
        await rt.aclose()
