"""The core's live-edit loop on a virtual clock: the edit cadence per message, the final call
(at once, or spaced after an edit), a slow platform (no text lost, nothing cancelled mid-call),
sinks that ask for another round, and sinks that fail."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest

from bot.core.live import LiveLoop, Spacing

INTERVAL = 1.0


class VirtualTime:
    """A clock that moves only when the test says so; sleepers wake as it passes their time."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        entry = (self.now + delay, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            await turns()
            due = [s for s in self._sleepers if s[0] <= target and not s[1].done()]
            if not due:
                break
            at, future = min(due, key=lambda s: s[0])
            self.now = max(self.now, at)
            future.set_result(None)
        self.now = target
        await turns()


async def turns(count: int = 20) -> None:
    """Let every task that can run, run (nothing here waits on real time)."""
    for _ in range(count):
        await asyncio.sleep(0)


class Board:
    """The smallest honest renderer: one message, rewritten whole. ``gate`` closed: every call
    to the platform hangs until it opens (a slow platform)."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.text = ""
        self.shown = ""
        self.calls: list[tuple[float, str, str]] = []
        self.in_flight: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.spacing = Spacing(INTERVAL, clock=time.clock, sleep=time.sleep)
        self.live = LiveLoop(self, name="board", clock=time.clock, sleep=time.sleep)
        self.spacing.created("m")

    def append(self, delta: str) -> None:
        self.text += delta
        self.live.poke()

    def due(self) -> float:
        return self.spacing.due("m")

    async def show(self) -> bool:
        if self.text != self.shown:
            await self._call("live", self.text)
        return False

    async def finish(self) -> None:
        await self.live.stop()
        if self.text != self.shown:
            await self.spacing.final("m")
            await self._call("final", self.text)

    async def _call(self, kind: str, text: str) -> None:
        self.in_flight.append(text)
        try:
            await self.gate.wait()
        finally:
            self.in_flight.remove(text)
        self.calls.append((self.time.now, kind, text))
        self.shown = text
        self.spacing.wrote("m")


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


async def test_each_message_is_written_at_most_once_per_interval(time: VirtualTime) -> None:
    board = Board(time)
    board.append("a")
    await time.advance(0.9)
    assert board.calls == [], "the first edit waits an interval from the message's creation"
    await time.advance(0.1)
    assert board.calls == [(1.0, "live", "a")]
    board.append("b")
    await time.advance(0.2)
    board.append("c")
    await time.advance(0.7)
    assert len(board.calls) == 1
    await time.advance(0.1)
    assert board.calls[-1] == (2.0, "live", "abc"), "text arriving meanwhile goes in one edit"
    await time.advance(5)
    assert len(board.calls) == 2, "no edit without new text"
    board.append("d")
    await time.advance(0)
    assert board.calls[-1] == (7.0, "live", "abcd"), "a quiet message is written at once"


async def test_an_answer_done_within_its_first_interval_is_one_final_call(
    time: VirtualTime,
) -> None:
    board = Board(time)
    board.append("quick")
    await time.advance(0.4)
    await board.finish()
    assert board.calls == [(0.4, "final", "quick")]
    assert time.now == 0.4, "stopping cut the wait for the live edit short"


async def test_the_final_call_keeps_the_interval_after_an_edit(time: VirtualTime) -> None:
    board = Board(time)
    board.append("a")
    await time.advance(1.0)
    board.append("b")
    await time.advance(0.3)
    finishing = asyncio.create_task(board.finish())
    await time.advance(0.6)
    assert not finishing.done()
    await time.advance(0.1)
    await finishing
    assert board.calls == [(1.0, "live", "a"), (2.0, "final", "ab")]


async def test_a_slow_platform_loses_no_text_and_its_call_is_never_cut_off(
    time: VirtualTime,
) -> None:
    board = Board(time)
    board.gate.clear()
    board.append("a")
    await time.advance(1.0)
    assert board.in_flight == ["a"]
    board.append("b")  # arrives while the call is in flight
    await time.advance(3.0)
    assert board.calls == [] and board.in_flight == ["a"], "one call at a time"
    board.gate.set()
    await time.advance(0)
    assert board.calls == [(4.0, "live", "a")]
    await time.advance(1.0)
    assert board.calls[-1] == (5.0, "live", "ab"), "the text that came meanwhile follows"

    board.gate.clear()
    board.append("c")
    await time.advance(1.0)
    assert board.in_flight == ["abc"]
    # The caller is cancelled (a shutdown) while it waits for the call in flight.
    stopping = asyncio.create_task(board.live.stop())
    await turns()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    board.append("d")  # too late for a live edit
    board.gate.set()
    await time.advance(0.5)
    assert board.calls[-1] == (6.0, "live", "abc"), "the call in flight landed, whole"
    assert board.in_flight == [] and len(board.calls) == 3, "and no other call started"
    finishing = asyncio.create_task(board.finish())
    await time.advance(0.5)
    await finishing
    assert board.calls[-1] == (7.0, "final", "abcd"), "the final call comes last, spaced"


async def test_stop_waits_for_the_call_in_flight(time: VirtualTime) -> None:
    board = Board(time)
    board.gate.clear()
    board.append("a")
    await time.advance(1.0)
    finishing = asyncio.create_task(board.finish())
    await time.advance(0.5)
    assert not finishing.done() and board.calls == []
    board.gate.set()
    await time.advance(0.5)
    await finishing
    assert [kind for _, kind, _ in board.calls] == ["live"], "nothing left for the final call"


async def test_a_sink_asking_for_another_round_is_called_again_when_due(
    time: VirtualTime,
) -> None:
    rounds: list[float] = []

    class Budgeted:
        """Refuses twice (a spent budget), then sends."""

        next_try = 0.0

        def due(self) -> float:
            return self.next_try

        async def show(self) -> bool:
            rounds.append(time.now)
            if len(rounds) < 3:
                self.next_try = time.now + 0.5
                return True
            return False

    live = LiveLoop(Budgeted(), name="budgeted", clock=time.clock, sleep=time.sleep)
    live.poke()
    await time.advance(3)
    assert rounds == [0.0, 0.5, 1.0]
    await live.stop()


async def test_a_failing_sink_ends_the_live_edits_not_the_answer(
    time: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    board = Board(time)
    shows = 0

    async def broken() -> bool:
        nonlocal shows
        shows += 1
        raise RuntimeError("a bug")

    board.show = broken  # type: ignore[method-assign]
    board.append("a")
    with caplog.at_level(logging.ERROR, logger="bot.core.live"):
        await time.advance(1.0)
    assert shows == 1 and "live update board failed" in caplog.text
    board.append("b")
    await time.advance(2.0)
    assert shows == 1
    await board.finish()
    assert board.calls == [(3.0, "final", "ab")]


async def test_a_sink_failing_to_say_when_is_logged_too(
    time: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    board = Board(time)

    def broken() -> float:
        raise RuntimeError("a bug")

    board.due = broken  # type: ignore[method-assign]
    board.append("a")
    with caplog.at_level(logging.ERROR, logger="bot.core.live"):
        await time.advance(1.0)
    assert "live update board failed" in caplog.text
    await board.finish()  # stop() does not raise it
    assert board.calls == [(1.0, "final", "a")]


async def test_a_loop_never_poked_or_already_stopped_starts_nothing(time: VirtualTime) -> None:
    board = Board(time)
    await board.live.stop()
    board.append("late")
    await time.advance(2.0)
    assert board.calls == [] and board.live.stopping


def test_spacing_counts_from_creation_or_the_last_write(time: VirtualTime) -> None:
    spacing = Spacing(INTERVAL, clock=time.clock, sleep=time.sleep)
    assert spacing.due("new") == -math.inf
    spacing.created("m", at=-0.25)
    assert spacing.due("m") == 0.75
    time.now = 2.0
    spacing.wrote("m")
    assert spacing.due("m") == 3.0
    spacing.forget("m")
    assert spacing.due("m") == -math.inf
