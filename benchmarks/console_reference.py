"""The floor under ``console_chat.py``: the least any Python console can do for a chat.

    uv run python benchmarks/console_chat.py --reference

Reads a line from stdin, streams the fake upstream's answer to stdout as it arrives (a write
and a flush per piece, as a terminal shows it), then a footer line; and the next line. No
framework, no database, no budgets, no history, no error handling. Configured by
``OPENROUTER_BASE_URL`` and ``REFERENCE_API_KEY`` (the key the fake upstream accepts).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp

MODEL = "anthropic/claude-3.5-sonnet"


async def main() -> None:
    url = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
    auth = {"Authorization": f"Bearer {os.environ['REFERENCE_API_KEY']}"}
    out = sys.stdout
    async with aiohttp.ClientSession() as session:
        while line := await asyncio.to_thread(sys.stdin.buffer.readline):
            text = line.decode("utf-8", "replace").strip()
            if not text or text.startswith("/apikey"):
                continue
            started = time.monotonic()
            body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": text}]}
            usage: dict[str, Any] = {}
            async with session.post(url, json=body, headers=auth) as r:
                async for raw in r.content:
                    if not raw.startswith(b"data: "):
                        continue
                    if raw.startswith(b"data: [DONE]"):
                        break
                    chunk = json.loads(raw[6:])
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            out.write(piece)
                            out.flush()
            out.write(
                f"\n— {MODEL} · {usage.get('prompt_tokens', 0)} in · "
                f"{usage.get('completion_tokens', 0)} out · ${usage.get('cost', 0)} · "
                f"{time.monotonic() - started:.1f} s\n"
            )
            out.flush()


if __name__ == "__main__":
    asyncio.run(main())
