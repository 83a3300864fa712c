"""The answer tasks' life cycle: spawned and tracked tasks are drained at shutdown within the
grace, those still running after it are cancelled, and work not started yet never starts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.core.lifecycle import SHUTDOWN_GRACE_SECONDS, AnswerTasks

#: A grace nothing here waits out unless a task is meant to outlive it.
SHORT = 0.05


async def test_drain_waits_for_tasks_started_meanwhile() -> None:
    tasks = AnswerTasks("Test")
    release = asyncio.Event()
    finished: list[str] = []

    async def child() -> None:
        await release.wait()
        finished.append("child")

    async def parent() -> None:
        tasks.spawn(child(), name="child")
        finished.append("parent")

    tasks.spawn(parent(), name="parent")
    draining = asyncio.create_task(tasks.drain())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not draining.done()
    release.set()
    await draining
    assert finished == ["parent", "child"] and len(tasks) == 0


async def test_shutdown_lets_answers_finish_within_the_grace() -> None:
    tasks = AnswerTasks("Test")
    release = asyncio.Event()
    outcome: list[str] = []

    async def answer() -> None:
        try:
            await release.wait()
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async def tracked() -> None:
        with tasks.track():
            await release.wait()
        outcome.append("tracked finished")

    tasks.spawn(answer(), name="answer")
    other = asyncio.create_task(tracked())  # started by someone else (discord.py)
    await asyncio.sleep(0)
    assert len(tasks) == 2
    shutting = asyncio.create_task(tasks.shutdown(grace=SHUTDOWN_GRACE_SECONDS))
    await asyncio.sleep(0)
    assert not shutting.done()
    release.set()
    await shutting
    await other
    assert sorted(outcome) == ["finished", "tracked finished"]


async def test_shutdown_cancels_what_still_runs_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = AnswerTasks("Test")
    never = asyncio.Event()
    started: list[str] = []

    async def stuck(name: str) -> None:
        started.append(name)
        await never.wait()

    async def tracked() -> None:
        with tasks.track():
            await never.wait()

    spawned = tasks.spawn(stuck("spawned"), name="spawned")
    tasks.admit(stuck("admitted"), name="admitted")
    other = asyncio.create_task(tracked())
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="bot.core.lifecycle"):
        await tasks.shutdown(grace=SHORT)
    assert spawned.cancelled() and other.cancelled()
    assert started == ["spawned", "admitted"]
    assert "cancelling 3 Test task(s) still running at shutdown" in caplog.text
    assert len(tasks) == 0


async def test_work_admitted_but_not_started_never_starts() -> None:
    tasks = AnswerTasks("Test")
    started: list[str] = []

    async def work(name: str) -> None:
        started.append(name)

    tasks.admit(work("one"), name="one")
    tasks.admit(work("two"), name="two")
    await tasks.cancel_all()  # before the admission task had its turn
    await tasks.drain()
    assert started == [] and len(tasks) == 0


async def test_cancelling_waits_a_bounded_time_for_tasks_that_will_not_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = AnswerTasks("Test")
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # a cleanup that takes its time

    task = tasks.spawn(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="bot.core.lifecycle"):
        await tasks.cancel_all(wait=SHORT)
    assert not task.done() and "still running" in caplog.text
    release.set()
    await task


async def test_a_failing_task_is_logged_and_leaves_the_others_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = AnswerTasks("Test")

    async def broken() -> None:
        raise RuntimeError("a bug")

    async def fine() -> None:
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="bot.core.lifecycle"):
        tasks.spawn(broken(), name="broken")
        ok = tasks.spawn(fine(), name="fine")
        await tasks.drain()
    assert "background task broken failed" in caplog.text
    assert ok.done() and not ok.cancelled()


async def test_a_tracked_task_shutting_down_does_not_wait_for_itself() -> None:
    tasks = AnswerTasks("Test")

    async def closing_from_an_answer() -> None:
        with tasks.track():
            await tasks.shutdown(grace=SHORT)

    await asyncio.wait_for(closing_from_an_answer(), timeout=5)
