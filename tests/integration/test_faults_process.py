"""Faults around the worker process itself: the database briefly unavailable (PostgreSQL
stopped and started again while chats stream and new ones arrive), and a worker killed with
SIGKILL or stopped with SIGTERM mid-stream (then a fresh worker takes over the same database).

Real ``routerbot slack`` processes; the fake Slack and OpenRouter are in this process. After
each fault: the bot answers the next request, users were told in one line, committed usage is
intact, nothing is charged twice and the database passes its integrity checks; once the next
process has settled what the dead one left, the ledger equals the provider's record of what it
served (the fake's ``generations``), and a dead process's budget holds stopped counting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.core.inflight import INTERRUPTED
from storage.crypto import generate_key
from storage.models import AnswerInFlight
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import FakeSlack
from tests.integration.test_faults_provider import assert_clear
from tests.integration.worker_support import (
    SlackClient,
    Worker,
    answered,
    can_restart_postgres,
    check_ledger,
    database,
    flights_left,
    fresh_postgres,
    has_footer,
    ledger_vs_provider,
    pg_cluster,
    question_message,
    slack_env,
    start_worker,
    wait_healthy,
    wait_postgres,
    wait_settled,
)

KEY = "sk-or-v1-process-fault-key-000001"


@dataclass
class Rig:
    tmp_path: Path
    url: str
    slack: FakeSlack
    openrouter: FakeOpenRouter
    client: SlackClient
    env: dict[str, str]

    async def worker(self) -> Worker:
        worker = await start_worker("slack", self.env, cwd=self.tmp_path)
        await wait_healthy(worker)
        return worker

    async def chat(self, worker: Worker, question: str, channel: str = "C1") -> str:
        acked = await self.client.command(worker.url, "/chat", question, channel=channel)
        assert acked.status == 200
        return acked.response_url

    async def answered(self, questions: list[str], timeout: float = 20.0) -> None:
        def done() -> bool:
            found = [question_message(self.slack, "C1", q) for q in questions]
            return all(m is not None and answered(m) for m in found)

        await self.slack.wait_for(done, timeout)

    def text(self, question: str) -> str:
        message = question_message(self.slack, "C1", question)
        assert message is not None, question
        return message.text


@asynccontextmanager
async def rig(tmp_path: Path, url: str) -> AsyncIterator[Rig]:
    async with (
        FakeSlack() as slack,
        FakeOpenRouter(valid_keys=(KEY,)) as openrouter,
        aiohttp.ClientSession() as http,
    ):
        team = slack.add_team("T1")
        env = slack_env(
            tmp_path, database_url=url, secret_key=generate_key(), slack=slack,
            bot_token=team.bot_token, openrouter_url=openrouter.base_url,
        )  # fmt: skip
        yield Rig(tmp_path, url, slack, openrouter, SlackClient(slack, http), env)


async def warm_up(r: Rig, worker: Worker) -> list[str]:
    acked = await r.client.command(worker.url, "/apikey", f"set {KEY}", user="UADMIN")
    await r.slack.wait_for(lambda: bool(r.client.replies(acked)), 10)
    questions = [f"warm {i}" for i in range(3)]
    for q in questions:
        await r.chat(worker, q)
    await r.answered(questions)
    return questions


@pytest.mark.postgres
async def test_database_briefly_unavailable_during_load(tmp_path: Path) -> None:
    if not can_restart_postgres():
        pytest.skip("needs root and a local pg_ctlcluster cluster to restart PostgreSQL")
    async with fresh_postgres() as url, rig(tmp_path, url) as r:
        worker = await r.worker()
        try:
            await warm_up(r, worker)
            committed = (await check_ledger(url)).rows
            # 3 s streams: stopping the server (well under a second here) ends before they do.
            r.openrouter.words_delay = 0.1
            r.openrouter.answer_words = 30
            streaming = [f"streaming {i}" for i in range(8)]
            for q in streaming:
                await r.chat(worker, q)
            await r.slack.wait_for(lambda: len(r.openrouter.chat_requests) == 3 + 8, 10)

            await pg_cluster("stop")  # the streams finish while the database is gone
            try:
                await r.slack.wait_for(lambda: len(r.openrouter.generations) == 3 + 8, 10)
                during = [await r.chat(worker, f"during {i}") for i in range(2)]
                await r.slack.wait_for(lambda: all(r.client.replies_to(u) for u in during), 10)
            finally:
                await pg_cluster("start")
                await wait_postgres(30)

            await r.answered(streaming, timeout=30)
            for q in streaming:
                text = r.text(q)
                assert_clear(text)
                # Recorded once the database was back, or else told in one line.
                assert has_footer(text) or len([x for x in text.splitlines() if "⚠" in x]) == 1
            for url_ in during:
                [told] = r.client.replies_to(url_)
                assert "\n" not in told and "Traceback" not in told

            await r.chat(worker, "after the restart")
            await r.answered(["after the restart"], timeout=20)
            assert has_footer(r.text("after the restart"))
        finally:
            assert await worker.stop() == 0
        # The outage really overlapped the chats' ledger writes, which waited it out.
        assert any("retrying the usage record" in line for line in worker.lines)
        check = await check_ledger(url)
        assert check.problems == []
        assert check.rows[: len(committed)] == committed  # committed usage intact
        shown = sum(has_footer(r.text(q)) for q in [*streaming, "after the restart"])
        assert len(check.rows) == len(committed) + shown  # every answer shown is charged once


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_worker_killed_mid_stream(tmp_path: Path, backend: str) -> None:
    async with _database(tmp_path, backend) as url, rig(tmp_path, url) as r:
        first = await r.worker()
        try:
            await warm_up(r, first)
            committed = (await check_ledger(url)).rows
            r.openrouter.words_delay = 0.05
            # Answers of different lengths: some chats commit just as the worker dies.
            streaming = [f"streaming {i}" for i in range(8)]
            for i, q in enumerate(streaming):
                r.openrouter.script(answer=" ".join(["word"] * (6 + 6 * i)))
                await r.chat(first, q)
            await r.slack.wait_for(lambda: len(r.openrouter.generations) >= 3 + 2, 10)
            first.kill()
            assert await first.proc.wait() == -9
        finally:
            await first.stop()

        fresh = await r.worker()
        try:
            await r.chat(fresh, "after the kill")
            await r.answered(["after the kill"], timeout=20)
            assert has_footer(r.text("after the kill"))
        finally:
            assert await fresh.stop() == 0
        check = await check_ledger(url)
        assert check.problems == []
        if backend == "sqlite":
            assert check.sqlite_integrity == "ok"
        assert check.rows[: len(committed)] == committed
        killed_rows = check.rows[len(committed) : -1]
        footers = sum(has_footer(r.text(q)) for q in streaming)
        # An answer shown with its footer was recorded first; a chat recorded just before
        # the kill may not have had its final edit. None is charged twice.
        assert footers <= len(killed_rows) <= len(streaming)
        assert all(row.outcome == "ok" for row in killed_rows)
        assert "Traceback" not in fresh.stderr_text()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_answers_cut_short_by_a_killed_worker_are_finished_by_another(
    tmp_path: Path, backend: str
) -> None:
    """Answers streaming when their worker dies do not keep their cursor forever: a worker on
    the same database notices the dead one's stopped heartbeat and says they were cut short."""
    async with _database(tmp_path, backend) as url, rig(tmp_path, url) as r:
        r.env.update(ROUTERBOT_ANSWER_HEARTBEAT_SECONDS="0.2", ROUTERBOT_ANSWER_STALE_SECONDS="1.5")
        first = await r.worker()
        questions = [f"long {i}" for i in range(3)]
        try:
            await warm_up(r, first)
            r.openrouter.words_delay = 0.2
            r.openrouter.script(answer=" ".join(["word"] * 60), times=None)
            for q in questions:
                await r.chat(first, q)
            await r.slack.wait_for(
                lambda: all(question_message(r.slack, "C1", q) for q in questions), 10
            )
            await asyncio.sleep(0.8)  # a few heartbeats: the answers are in the journal
            first.kill()
            assert await first.proc.wait() == -9
        finally:
            await first.stop()
        assert not any(answered(m) for q in questions if (m := question_message(r.slack, "C1", q)))

        fresh = await r.worker()
        try:
            await r.answered(questions, timeout=20)
            for q in questions:
                text = r.text(q)
                assert text.endswith(f"\n\n⚠ {INTERRUPTED}"), text
                assert text.count("⚠") == 1 and "▍" not in text
            r.openrouter.script(answer="fine again", times=None)
            await r.chat(fresh, "after the kill")
            await r.answered(["after the kill"], timeout=20)
            assert has_footer(r.text("after the kill"))
        finally:
            assert await fresh.stop() == 0
        db = database(url)
        try:
            async with db.session() as session:
                left = (await session.execute(select(AnswerInFlight))).scalars().all()
        finally:
            await db.dispose()
        assert left == []  # finished once, and the fresh worker's own answer ended cleanly


#: Short leases, so that a dead worker's chats and holds lapse within the test.
LEASES = {"ROUTERBOT_LEASE_SECONDS": "2", "ROUTERBOT_LEASE_RENEW_SECONDS": "0.5"}
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def words(n: int) -> str:
    return " ".join(["word"] * n)


async def streaming_visibly(r: Rig, questions: list[str], *, at_least: int = 1) -> None:
    """Until every answer shows ``at_least`` words: accepted by the provider, and billing."""

    def shown() -> bool:
        found = [question_message(r.slack, "C1", q) for q in questions]
        return all(m is not None and m.text.count("word") >= at_least for m in found)

    await r.slack.wait_for(shown, 30)


async def ask(r: Rig, worker: Worker, command: str, text: str = "") -> str:
    acked = await r.client.command(worker.url, command, text, user="UADMIN")
    await r.slack.wait_for(lambda: bool(r.client.replies(acked)), 10)
    return "\n".join(r.client.replies(acked))


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_chats_cut_short_by_a_signal_end_up_as_the_provider_billed(
    tmp_path: Path, backend: str, how: str
) -> None:
    async with _database(tmp_path, backend) as url, rig(tmp_path, url) as r:
        r.env.update(LEASES)
        first = await r.worker()
        questions = [f"long {i}" for i in range(4)]
        try:
            await warm_up(r, first)
            r.openrouter.words_delay = 0.1
            for i, q in enumerate(questions):
                # On SIGTERM the short ones finish within the 10 s grace, the long ones do not.
                r.openrouter.script(answer=words(60 if i % 2 else 200))
                await r.chat(first, q)
            await streaming_visibly(r, questions)
            if how == "SIGKILL":
                first.kill()
                assert await first.proc.wait() == -9
                # Billed, not on the ledger: on record as chats in flight.
                assert await flights_left(url) == len(questions)
            else:
                assert await first.stop(timeout=40) == 0
        finally:
            await first.stop()
        if how == "SIGTERM":  # recorded, and settled by its last sweep, before it exited
            assert await flights_left(url) == 0
            assert ledger_vs_provider((await check_ledger(url)).rows, r.openrouter) == []

        fresh = await r.worker()
        try:
            check = await wait_settled(url, r.openrouter)
            await r.chat(fresh, "after")
            await r.answered(["after"])
        finally:
            assert await fresh.stop() == 0
        check = await check_ledger(url)
        assert check.problems == []
        assert ledger_vs_provider(check.rows, r.openrouter) == []
        cut_short = [row for row in check.rows if row.outcome in ("interrupted", "cancelled")]
        expected = {"SIGKILL": ("interrupted", 4), "SIGTERM": ("cancelled", 2)}[how]
        assert [row.outcome for row in cut_short] == [expected[0]] * expected[1]
        assert all(row.cost_source == "reconciled" and row.cost_nano for row in cut_short)
        assert "Traceback" not in first.stderr_text() + fresh.stderr_text()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_dead_workers_budget_hold_is_released_within_a_lease(
    tmp_path: Path, backend: str
) -> None:
    async with _database(tmp_path, backend) as url, rig(tmp_path, url) as r:
        r.env.update(LEASES)
        first = await r.worker()
        try:
            await warm_up(r, first)
            # Room for one chat's hold (a 1,000-token answer at $15 per 1M: $0.015), not for a
            # second one beside it whose 1,000-token prompt ($0.003 at $3 per 1M) and shortest
            # answer (256 tokens) need more than the $0.005 left.
            assert "$0.02" in await ask(r, first, "/budget", "set 0.02")
            r.openrouter.words_delay = 0.1
            r.openrouter.script(answer=words(150))
            await r.chat(first, "held long")
            # Longer than a lease (2 s): the hold is renewed while its worker lives.
            await streaming_visibly(r, ["held long"], at_least=30)
            assert "held by chats in progress" in await ask(r, first, "/budget")
            refused = await r.client.command(first.url, "/chat", "while held " + "padding " * 375)
            await r.slack.wait_for(lambda: bool(r.client.replies(refused)), 10)
            assert "held by chats in progress" in r.client.replies(refused)[0]
            first.kill()
            assert await first.proc.wait() == -9
        finally:
            await first.stop()

        fresh = await r.worker()
        try:
            loop = asyncio.get_running_loop()
            killed_at = loop.time()
            while "held by chats in progress" in await ask(r, fresh, "/budget"):
                assert loop.time() - killed_at < 60, "a dead worker's hold still counts"
            await r.chat(fresh, "after the kill")
            await r.answered(["after the kill"])
            assert has_footer(r.text("after the kill"))
            await wait_settled(url, r.openrouter)
        finally:
            assert await fresh.stop() == 0
        check = await check_ledger(url)  # and no hold left behind
        assert check.problems == []
        assert ledger_vs_provider(check.rows, r.openrouter) == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_live_workers_settle_a_dead_ones_chats_exactly_once(
    tmp_path: Path, backend: str
) -> None:
    async with _database(tmp_path, backend) as url, rig(tmp_path, url) as r:
        # Both survivors sweep five times a second, racing for every lapsed chat.
        r.env.update(ROUTERBOT_LEASE_SECONDS="2", ROUTERBOT_LEASE_RENEW_SECONDS="0.2")
        doomed = await r.worker()
        await warm_up(r, doomed)
        survivors = [await r.worker(), await r.worker()]
        questions = [f"doomed {i}" for i in range(6)]
        try:
            r.openrouter.words_delay = 0.1
            r.openrouter.script(answer=words(200), times=len(questions))
            for q in questions:
                await r.chat(doomed, q)
            await streaming_visibly(r, questions)
            doomed.kill()
            assert await doomed.proc.wait() == -9
            check = await wait_settled(url, r.openrouter)
        finally:
            await doomed.stop()
            for worker in survivors:
                assert await worker.stop() == 0
        assert check.problems == []  # among them: no generation charged twice
        assert [row.outcome for row in check.rows].count("interrupted") == len(questions)
        settled = [
            int(line.split("settled ")[1].split(" ")[0])
            for worker in survivors
            for line in worker.lines
            if "settled " in line and "chat(s) cut short" in line
        ]
        assert sum(settled) == len(questions)


@asynccontextmanager
async def _database(tmp_path: Path, backend: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'rb.db'}"
    else:
        async with fresh_postgres() as url:
            yield url
