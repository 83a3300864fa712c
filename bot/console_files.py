"""The console's ``/chat --file PATH``: files from the operator's disk, sent with the question.

Slack and Discord carry files with the message; a terminal cannot, so the console takes
``--file PATH`` (repeatable, among the flags before the prompt) and reads each file itself,
with the same kinds and limits as the chat platforms (the core checks them), at most the
kind's limit read, off the event loop. Nothing is copied or kept.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from bot.core.chat import attachments as a

__all__ = ["read_files", "split_files"]

#: Flags of /chat that take a value (``--file`` aside), so their value is not a prompt word.
_VALUED = ("--model", "-m", "--effort")


def split_files(line: str) -> tuple[str, list[str]]:
    """``/chat --file a.png --web hi`` → ``("/chat --web hi", ["a.png"])``. Only the flags
    before the prompt are read; anything else goes to the core's grammar as typed."""
    word, _, rest = line.strip().partition(" ")
    if word.lower() not in ("/chat", "chat") or "--file" not in rest:
        return line, []
    tokens = rest.split()
    kept: list[str] = []
    paths: list[str] = []
    text = rest.strip()
    while tokens and tokens[0].startswith("-") and tokens[0] != "--":
        name, eq, value = tokens[0].partition("=")
        if name == "--file":
            consumed = 1 if eq else 2
            path = value if eq else (tokens[1] if len(tokens) > 1 else "")
            if path:
                paths.append(path)
        else:
            consumed = 2 if name in _VALUED and not eq else 1
            kept.extend(tokens[:consumed])
        for token in tokens[:consumed]:
            text = text[text.index(token) + len(token) :].lstrip()
        tokens = tokens[consumed:]
    return " ".join([word, *kept, text]).strip(), paths


def _read(path: str) -> a.Attachment:
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise a.missing_file(path)
        name = file.name
        media_type = mimetypes.guess_type(name)[0] or ""
        a.check_declared([a.Declared(name, media_type, size)])
        with file.open("rb") as handle:
            data = handle.read(a.byte_limit(a.kind_of(name, media_type)) + 1)
    except OSError:
        raise a.missing_file(path) from None
    return a.Attachment(name, media_type, data)


async def read_files(paths: list[str]) -> tuple[a.Attachment, ...]:
    """The files' bytes; raises ``AttachmentRefused`` with the sentence to show."""
    if len(paths) > a.MAX_ATTACHMENTS:
        a.check_declared([a.Declared(p, None, None) for p in paths])
    return tuple([await asyncio.to_thread(_read, path) for path in paths])
