"""A chat the user can stop: :func:`stoppable` wraps a chat's replies and ends them when asked.

Stopping closes the provider stream (the core then records the chat as ``cancelled``; its
cost is unknown unless the provider reported usage, since some providers bill a closed stream
and some do not) and ends the replies as an answer would end, so a front-end renders a stopped
answer with the code it already has: a ``ChatCompleted`` holding the partial text, a notice
that says it was stopped and a footer whose cost is unknown. Stopped before any text, it ends
with a ``ChatFailed`` sentence; stopped before the chat started, with a private ``TextReply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

from bot.core.format import format_footer
from bot.core.pricing import ChatCost
from bot.core.replies import ChatCompleted, ChatDelta, ChatFailed, ChatStarted, Reply, TextReply

__all__ = ["STOPPED", "STOPPED_BEFORE_START", "STOPPED_BEFORE_TEXT", "stoppable"]

STOPPED = "⏹ Stopped at your request: the answer ends here."
STOPPED_BEFORE_TEXT = (
    "Stopped at your request before the model wrote anything; the provider may still bill "
    "what it started, so this chat's cost is recorded as unknown."
)
STOPPED_BEFORE_START = "Stopped at your request; nothing was sent to the model."

#: Asked when the first text arrives (another process may have been told to stop this chat).
Check = Callable[[], Awaitable[bool]]


async def stoppable(
    replies: AsyncGenerator[Reply, None],
    stop: asyncio.Event,
    *,
    check: Check | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[Reply, None]:
    """``replies`` until they end or ``stop`` is set (then the ending described above)."""
    started = clock()
    model: str | None = None
    parts: list[str] = []
    checked = check is None
    waiter = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            step = asyncio.ensure_future(anext(replies))
            await asyncio.wait({step, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                # Cancelling the step unwinds the chat inside it: the provider stream closes
                # and the core records the chat before the cancellation reaches us.
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                break
            try:
                reply = step.result()
            except StopAsyncIteration:
                return
            if isinstance(reply, ChatStarted):
                model = reply.model
            elif isinstance(reply, ChatDelta):
                if not checked:
                    checked = True
                    if check is not None and await check():
                        stop.set()
                        continue  # written after the Stop: not shown
                parts.append(reply.text)
            yield reply
        else:
            # Stopped between two replies: closing the chat runs its own ending (every layer of
            # the core closes what it wraps), so it is recorded before this goes on; replies
            # already waiting are dropped, not read through.
            await replies.aclose()
        yield _ending(model, "".join(parts), clock() - started)
    finally:
        waiter.cancel()
        with contextlib.suppress(Exception):
            await replies.aclose()


def _ending(model: str | None, text: str, seconds: float) -> Reply:
    if model is None:
        return TextReply(STOPPED_BEFORE_START, private=True)
    if not text.strip():
        return ChatFailed(STOPPED_BEFORE_TEXT)
    cost = ChatCost(None, "unknown")
    footer = format_footer(
        model=model, prompt_tokens=None, completion_tokens=None, cost=cost, seconds=seconds
    )
    return ChatCompleted(
        text=text,
        footer=footer,
        model=model,
        conversation_id=0,
        cost=cost,
        cut_off=True,
        notices=(STOPPED,),
    )
