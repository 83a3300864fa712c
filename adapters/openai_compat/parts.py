"""Messages as the OpenAI chat format sends them: text alone, or text followed by content parts.

An image becomes ``{"type": "image_url", "image_url": {"url": "data:<type>;base64,…"}}`` and a
document ``{"type": "file", "file": {"filename", "file_data": "data:<type>;base64,…"}}``
(OpenRouter's request shapes; OpenAI's ``file`` part takes the same ``file_data``). The bytes are
encoded here, per request, and never kept: the request body is the only copy.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from adapters.base import ChatMessage, ContentPart, FilePart, ImagePart

__all__ = ["data_url", "has_files", "message_json", "part_json"]


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def part_json(part: ContentPart) -> dict[str, Any]:
    match part:
        case ImagePart(media_type=media_type, data=data):
            return {"type": "image_url", "image_url": {"url": data_url(media_type, data)}}
        case FilePart(filename=filename, media_type=media_type, data=data):
            return {
                "type": "file",
                "file": {"filename": filename, "file_data": data_url(media_type, data)},
            }


def message_json(message: ChatMessage) -> dict[str, Any]:
    """One message; with parts, ``content`` is a list: the text first, then each part."""
    if not message.parts:
        return {"role": message.role, "content": message.content}
    content = [{"type": "text", "text": message.content}]
    content.extend(part_json(part) for part in message.parts)
    return {"role": message.role, "content": content}


def has_files(messages: Sequence[ChatMessage]) -> bool:
    return any(isinstance(part, FilePart) for m in messages for part in m.parts)
