"""Text helpers shared by every front-end: money, the cost footer, and the message splitter."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from bot.core.pricing import ChatCost

SLACK_MESSAGE_LIMIT = 3500
DISCORD_MESSAGE_LIMIT = 2000


def format_usd(amount: Decimal) -> str:
    """``$12.34`` for whole-cent sums, four decimals below a dollar, two significant digits for
    sub-cent amounts so a $0.000021 chat does not read as $0.0000."""
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount >= 1:
        text = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    elif amount >= Decimal("0.0001"):
        text = f"{amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP)}"
    else:
        exponent = amount.adjusted()  # e.g. -5 for 0.000021
        quantum = Decimal(1).scaleb(exponent - 1)
        text = f"{amount.quantize(quantum, rounding=ROUND_HALF_UP):f}"
    return f"{sign}${text}"


def format_price(per_1m: Decimal | None) -> str:
    if per_1m is None:
        return "?"
    normalized = per_1m.quantize(Decimal("0.01")) if per_1m >= Decimal("0.01") else per_1m
    return f"${normalized:f}" if per_1m < Decimal("0.01") else f"${normalized:,}"


def format_cost(cost: ChatCost) -> str:
    if cost.usd is None:
        return "cost unknown"
    text = format_usd(cost.usd)
    return f"≈{text}" if cost.source in ("computed", "estimated") else text


def format_footer(
    *,
    model: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    cached_tokens: int = 0,
    cost: ChatCost,
    seconds: float,
    reasoning_tokens: int = 0,
    searches: int | None = None,
) -> str:
    """``anthropic/claude-3.5-sonnet · 1,234 in · 567 out · $0.0123 · 2.4 s``; with reasoning
    ``567 out (320 reasoning)`` (reasoning tokens are part of the output), with web search
    ``· 2 searches`` before the cost (``searches`` None: the chat could not search)."""
    parts = [model]
    if prompt_tokens is not None:
        cached = f" ({cached_tokens:,} cached)" if cached_tokens else ""
        parts.append(f"{prompt_tokens:,} in{cached}")
    if completion_tokens is not None:
        reasoning = f" ({reasoning_tokens:,} reasoning)" if reasoning_tokens else ""
        parts.append(f"{completion_tokens:,} out{reasoning}")
    if searches is not None:
        parts.append(f"{searches:,} search" + ("" if searches == 1 else "es"))
    parts.append(format_cost(cost))
    parts.append(f"{seconds:.1f} s")
    return " · ".join(parts)


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def _fence_state(lines: list[str], state: tuple[str, str] | None) -> tuple[str, str] | None:
    """Track an open code fence (marker, info string) across ``lines``."""
    for line in lines:
        m = _FENCE.match(line)
        if not m:
            continue
        marker, info = m.group(1), m.group(2).strip()
        if state is None:
            state = (marker, info)
        elif marker[0] == state[0][0] and len(marker) >= len(state[0]) and not info:
            state = None
    return state


def _cut_point(text: str, limit: int) -> int:
    """Best place to cut ``text`` at or before ``limit``: paragraph, line, space, else hard."""
    window = text[:limit]
    for sep in ("\n\n", "\n", " "):
        idx = window.rfind(sep)
        if idx > limit // 4:
            return idx + len(sep)
    return limit


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters.

    Cuts prefer paragraph, then line, then word boundaries. A cut inside a fenced code block
    closes the fence at the end of the part and reopens it (same language) at the start of the
    next, so every part renders on its own and no code block is ever broken.
    """
    if limit < 40:
        raise ValueError("limit too small to carry code fences")
    if not text:
        return [""]
    parts: list[str] = []
    rest = text
    fence: tuple[str, str] | None = None
    while rest:
        prefix = f"{fence[0]}{fence[1]}\n" if fence else ""
        if len(prefix) + len(rest) <= limit:
            parts.append(prefix + rest)
            break
        # Reserve room for a closing fence in case the cut lands inside a block.
        budget = limit - len(prefix) - 4 - (len(fence[0]) if fence else 3)
        budget = max(budget, 1)
        cut = _cut_point(rest, budget)
        head, rest = rest[:cut], rest[cut:]
        state_after = _fence_state((prefix + head).splitlines(), None)
        body = prefix + head
        if state_after is not None:
            closing = state_after[0]
            body = body if body.endswith("\n") else body + "\n"
            body += closing
        parts.append(body.rstrip("\n") if state_after is None else body)
        fence = state_after
        if fence is None:
            rest = rest.lstrip("\n")
    return [p for p in parts if p.strip()] or [text[:limit]]


def split_with_footer(answer: str, footer: str, limit: int) -> list[str]:
    """Split an answer and put the footer on the last part (itself split if it must be)."""
    parts = split_message(answer, limit) if answer else []
    tail = f"\n\n{footer}" if parts else footer
    if parts and len(parts[-1]) + len(tail) <= limit:
        parts[-1] += tail
    else:
        parts.append(footer[:limit])
    return parts


def close_open_fence(text: str) -> str:
    """``text`` with a code fence it leaves open closed, so what follows renders as prose."""
    state = _fence_state(text.splitlines(), None)
    if state is None:
        return text
    return f"{text}\n{state[0]}" if not text.endswith("\n") else f"{text}{state[0]}"


def reopen_fence(text: str) -> str:
    """The fence line (with its info string) that reopens a code block ``text`` leaves open, so
    the next part continues it; ``""`` when every block in ``text`` is closed."""
    state = _fence_state(text.splitlines(), None)
    return f"{state[0]}{state[1]}\n" if state is not None else ""
