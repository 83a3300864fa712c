"""Server-sent events from a response body's bytes: the ``data`` of each event, in order.

A stream of a few hundred small events is read on every chat, so this works on bytes and
keeps one buffer, where ``httpx-sse`` decodes text, splits lines and builds an event object
per line through several generator layers. It reads what ``httpx-sse`` reads, by the same
rules (the SSE spec): lines end at ``\\r\\n``, ``\\r`` or ``\\n`` (also split across
chunks); ``:`` starts a comment; ``data:`` lines (one optional space after the colon) are
joined with ``\\n``; a blank line ends an event; an event still open when the body ends is
dropped. Only ``data`` matters here (``event``, ``id`` and ``retry`` are ignored), and an
event with empty data yields nothing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx

__all__ = ["SSEDecoder", "aiter_sse"]


class SSEDecoder:
    """Feed it a body's chunks; it returns the data of the events each chunk completes."""

    __slots__ = ("_buffer", "_data", "_trailing_cr")

    def __init__(self) -> None:
        #: The start of a line whose end has not arrived yet.
        self._buffer = b""
        self._data: list[str] = []
        #: A chunk ended with ``\r``: whether it was ``\r\n`` shows in the next one.
        self._trailing_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        if self._trailing_cr:
            chunk = b"\r" + chunk
            self._trailing_cr = False
        if chunk.endswith(b"\r"):
            self._trailing_cr = True
            chunk = chunk[:-1]
        text = self._buffer + chunk if self._buffer else chunk
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = text.split(b"\n")
        self._buffer = lines.pop()
        events: list[str] = []
        for line in lines:
            if not line:
                if self._data:
                    data = "\n".join(self._data)
                    self._data = []
                    if data:
                        events.append(data)
            elif line.startswith(b"data"):
                name, _, value = line.partition(b":")
                if name == b"data":
                    if value.startswith(b" "):
                        value = value[1:]
                    self._data.append(value.decode("utf-8", "replace"))
            # Anything else is a comment (``:``) or a field this reader has no use for.
        return events

    def close(self) -> list[str]:
        """At the body's end: a held ``\\r`` ended the last line, which may end an event."""
        if self._trailing_cr:
            self._trailing_cr = False
            return self.feed(b"\n")
        return []


async def aiter_sse(response: httpx.Response) -> AsyncGenerator[str, None]:
    """The ``data`` of each event of an SSE response, as its bytes arrive."""
    decoder = SSEDecoder()
    async for chunk in response.aiter_bytes():
        for data in decoder.feed(chunk):
            yield data
    for data in decoder.close():
        yield data
