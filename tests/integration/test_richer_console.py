"""Richer chats in ``routerbot console`` (a real process): ``/chat --file PATH`` reads files
from disk with the platforms' limits, ``--web`` prints its sources as plain lines, ``--effort``
goes through; a follow-up carries a reference to the file, not its bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, DEFAULT_MODELS, FakeOpenRouter
from tests.integration.richer_support import RICH, RICH_ID, data_url, png
from tests.integration.test_console import console_env, run_console


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    models = [RICH, *(m for m in DEFAULT_MODELS if m.id != RICH_ID)]
    async with FakeOpenRouter(models=models) as server:
        yield server


async def test_chat_with_files_web_and_effort(fake: FakeOpenRouter, tmp_path: Path) -> None:
    image = png(40, 30)
    (tmp_path / "shot.png").write_bytes(image)
    (tmp_path / "todo.txt").write_text("buy milk\n")
    env = console_env(
        tmp_path, fake, OPENROUTER_API_KEY=DEFAULT_KEY, ROUTERBOT_SECRET_KEY=generate_key()
    )
    fake.script(answer="A blue box.", web_searches=1)
    lines = [
        f"/chat --file {tmp_path / 'shot.png'} --web --effort low --file={tmp_path / 'todo.txt'}"
        "  what is this?",
        "and then?",
        f"/chat --file {tmp_path / 'missing.pdf'} read it",
        f"/chat --model openai/gpt-4o-mini --file {tmp_path / 'shot.png'} and now?",
    ]
    out, err, code = await run_console(env, lines, tmp_path)
    assert code == 0, err

    first, follow_up = fake.chat_requests
    body = first.json
    assert body["messages"][-1]["content"] == [
        {
            "type": "text",
            "text": "what is this?\n\n--- todo.txt ---\nbuy milk\n\n--- end of todo.txt ---",
        },
        {"type": "image_url", "image_url": {"url": data_url("image/png", image)}},
    ]
    assert body["reasoning"] == {"effort": "low"}
    assert body["tools"][0]["type"] == "openrouter:web_search"
    assert "A blue box.\nSources:\n  1. Story 1 — https://news.example/1\n" in out
    assert " · 1 search · $" in out

    history = follow_up.json["messages"][0]["content"]
    assert history.startswith("what is this?\n[attached: shot.png, PNG image 40×30, ")
    assert history.endswith("[attached: todo.txt, text, 9 bytes]")
    assert "There is no readable file at " in out and "missing.pdf" in out
    assert "`openai/gpt-4o-mini` does not take images; allowlisted models that do: " in out
    assert "Traceback" not in out + err
