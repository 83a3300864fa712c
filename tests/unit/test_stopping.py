"""``stoppable``: a chat's replies end as a stopped answer, and the chat is unwound (its
``finally`` runs, as the core's record of a cancelled chat does) before the ending is shown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.core.replies import ChatCompleted, ChatDelta, ChatFailed, ChatStarted, Reply, TextReply
from bot.core.stopping import STOPPED, STOPPED_BEFORE_START, STOPPED_BEFORE_TEXT, stoppable


class FakeChat:
    """A chat that streams words until told to finish, noting whether it was unwound."""

    def __init__(self, words: int = 1000) -> None:
        self.words = words
        self.unwound = asyncio.Event()
        self.more = asyncio.Event()
        self.more.set()

    async def replies(self) -> AsyncIterator[Reply]:
        try:
            yield ChatStarted(model="a/model")
            for i in range(self.words):
                await self.more.wait()
                await asyncio.sleep(0)
                yield ChatDelta(f"w{i} ")
        finally:
            self.unwound.set()


async def _collect(replies: AsyncIterator[Reply], stop: asyncio.Event, after: int) -> list[Reply]:
    out: list[Reply] = []
    async for reply in replies:
        out.append(reply)
        if len(out) == after:
            stop.set()
    return out


async def test_a_stop_mid_answer_ends_with_the_partial_text_and_an_unknown_cost() -> None:
    chat, stop = FakeChat(), asyncio.Event()
    out = await _collect(stoppable(chat.replies(), stop, clock=iter(range(100)).__next__), stop, 4)
    assert chat.unwound.is_set()
    *streamed, last = out
    assert isinstance(streamed[0], ChatStarted) and len(streamed) == 4
    assert isinstance(last, ChatCompleted)
    assert last.text == "w0 w1 w2 " and last.notices == (STOPPED,) and last.cut_off
    assert last.footer == "a/model · cost unknown · 1.0 s" and last.cost.usd is None


async def test_a_stop_while_the_chat_waits_cancels_it_there() -> None:
    chat, stop = FakeChat(), asyncio.Event()
    chat.more.clear()  # the model is thinking
    replies = stoppable(chat.replies(), stop)
    first = await anext(replies)
    assert isinstance(first, ChatStarted)
    waiting = asyncio.ensure_future(anext(replies))
    await asyncio.sleep(0.01)
    stop.set()
    ending = await waiting
    assert isinstance(ending, ChatFailed) and ending.text == STOPPED_BEFORE_TEXT
    assert chat.unwound.is_set()


async def test_a_stop_before_the_chat_starts_sends_nothing() -> None:
    chat, stop = FakeChat(), asyncio.Event()
    stop.set()
    out = [r async for r in stoppable(chat.replies(), stop)]
    assert out == [TextReply(STOPPED_BEFORE_START, private=True)]


async def test_a_stop_found_by_the_check_hides_the_first_text() -> None:
    chat, stop = FakeChat(), asyncio.Event()
    checks = 0

    async def check() -> bool:
        nonlocal checks
        checks += 1
        return True

    out = [r async for r in stoppable(chat.replies(), stop, check=check)]
    assert checks == 1
    assert [type(r) for r in out] == [ChatStarted, ChatFailed]
    assert chat.unwound.is_set()


async def test_an_unstopped_chat_passes_through_and_checks_once() -> None:
    chat, stop = FakeChat(words=5), asyncio.Event()
    checks = 0

    async def check() -> bool:
        nonlocal checks
        checks += 1
        return False

    out = [r async for r in stoppable(chat.replies(), stop, check=check)]
    assert [type(r) for r in out] == [ChatStarted] + [ChatDelta] * 5
    assert checks == 1
