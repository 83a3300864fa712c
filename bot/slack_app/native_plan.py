"""Cuts a natively streamed Slack answer into messages ("parts"): pure planning, no I/O.

Each part stays within ``limit`` characters, fence lines and footer included. Interim text is
sent until it is ``hold`` characters short of the limit; the rest waits until the part must end,
so the cut can fall on a paragraph, line or word boundary (never inside ``&amp;``). A cut inside
a code block closes the fence at the end of that part and reopens it, info string included, at
the top of the next part. Nothing is lost or repeated: the parts' bodies, in order, are exactly
the escaped answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.format import close_open_fence, reopen_fence

#: Interim text stops this far short of the part limit, leaving room to choose a good cut.
HOLD = 400


@dataclass(frozen=True, slots=True)
class Step:
    """Text for the open part (or a new one, starting with ``reopen``); ``end`` set: the part's
    last words (closing fence, footer), after which the next step opens a new part."""

    piece: str
    end: str | None
    reopen: str = ""


def plan(
    base: str,
    pending: str,
    *,
    new: bool,
    limit: int,
    hold: int = 0,
    tail: str | None = None,
) -> list[Step]:
    """What to send of ``pending``, given the open part's text ``base`` (``new``: the part is not
    posted yet and ``base`` is its reopened fence). Interim (``tail`` None): everything up to
    ``hold`` short of the limit, cutting only when the text no longer fits. Final: everything,
    the last part ending with ``tail``."""
    steps: list[Step] = []
    if new and tail is not None and not pending.strip():
        base = ""  # only blank text left: no code block to continue
    reopen = base if new else ""
    while True:
        candidate = base + pending
        size = len(candidate) + len(_closing(candidate))
        if tail is not None:
            closing = _closing(candidate)
            if size + len(tail) <= limit:
                steps.append(Step(pending, closing + tail, reopen))
                return steps
            if size <= limit:
                steps.append(Step(pending, closing, reopen))
                if tail:
                    steps.append(Step("", tail.lstrip("\n")[:limit]))
                return steps
        elif size <= limit - hold:
            if pending:
                steps.append(Step(pending, None, reopen))
            return steps
        elif size <= limit:
            shown = _shown(base, pending, limit - hold)
            if shown:
                steps.append(Step(shown, None, reopen))
            return steps
        cut = _cut(candidate, len(base), limit, new=new)
        steps.append(Step(candidate[len(base) : cut], _closing(candidate[:cut]), reopen))
        reopen = continued_fence(candidate[:cut], limit)
        base, pending, new = reopen, candidate[cut:], True


def continued_fence(text: str, limit: int) -> str:
    """The first line of the part after ``text``: its open code fence reopened (info string
    included while it is short), or nothing."""
    line = reopen_fence(text)
    if len(line) > limit // 8:
        match = _MARKER.match(line)
        marker = match.group() if match else ""
        line = f"{marker}\n" if marker and len(marker) < limit // 8 else ""
    return line


def _shown(base: str, pending: str, room: int) -> str:
    """The longest start of ``pending`` that keeps ``base`` + it + a closing fence in ``room``."""
    k = _entity_safe(pending, max(0, room - len(base)))
    while k > 0 and len(base) + k + len(_closing(base + pending[:k])) > room:
        k = _entity_safe(pending, k - 1)
    return pending[:k]


def _cut(text: str, start: int, limit: int, *, new: bool) -> int:
    """Where the part ``text`` (posted up to ``start``) ends: the best boundary that leaves room
    for a closing fence. A new part always takes at least one character."""
    low = start + 1 if new else start
    high = limit
    while True:
        cut = max(_boundary(text, start, high), low)
        if cut + len(_closing(text[:cut])) <= limit or high <= low:
            return cut
        high = min(high - 1, limit - len(_closing(text[:cut])))


def _boundary(text: str, start: int, high: int) -> int:
    window = text[:high]
    for sep in ("\n\n", "\n", " "):
        index = window.rfind(sep)
        if index > high // 4 and index + len(sep) > start:
            return index + len(sep)
    return max(_entity_safe(text, high), start)


def _entity_safe(text: str, index: int) -> int:
    """``index``, moved back so it does not split ``&amp;``, ``&lt;`` or ``&gt;``."""
    amp = text.rfind("&", max(0, index - 4), index)
    if amp != -1:
        for entity in ("&amp;", "&lt;", "&gt;"):
            if text.startswith(entity, amp) and amp + len(entity) > index:
                return amp
    return index


def _closing(text: str) -> str:
    """What :func:`close_open_fence` adds to ``text``."""
    return close_open_fence(text)[len(text) :]


_MARKER = re.compile(r"[`~]+")
