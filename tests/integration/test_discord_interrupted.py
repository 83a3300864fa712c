"""Discord answers cut short by a dead process are finished by another one: a real
``routerbot discord`` killed with SIGKILL mid-answer, then a fresh process on the same SQLite
database; and, in process, how each kind of journalled message is finished (or, with an
expired interaction token, left alone without a call)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.inflight import INTERRUPTED
from bot.discord_app.inflight import (
    INTERACTION_TOKEN_SECONDS,
    AnswersInFlight,
    JournaledSink,
    channel_target,
    interaction_target,
)
from storage import inflight as store
from storage.crypto import KeyVault, generate_key
from storage.db import Database
from storage.models import AnswerInFlight, utcnow
from storage.sql_store import SqlStore
from tests.fakes.discord import FakeDiscord, FakeInteraction
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.discord_harness import FOOTER_MARK, MEMBER, running_bot
from tests.integration.test_secrets_scan import leaks, sqlite_files
from tests.integration.worker_support import Worker, base_env, start_worker

FINISHED = f"⚠ {INTERRUPTED}"
CURSOR = "▌"


async def journalled(url: str) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        async with db.session() as session:
            rows = (await session.execute(select(AnswerInFlight))).scalars().all()
            return [json.loads(row.target) for row in rows]
    finally:
        await db.dispose()


async def wait_journalled(url: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Until the process has written ``count`` answers to the journal (another process)."""
    deadline = time.monotonic() + timeout
    while len(targets := await journalled(url)) < count:
        assert time.monotonic() < deadline, f"journalled: {targets}"
        await asyncio.sleep(0.05)  # polling another process's database writes
    return targets


async def test_answers_cut_short_by_a_killed_process_are_finished_by_another(
    tmp_path: Path,
) -> None:
    secret_key = generate_key()
    url = f"sqlite:///{tmp_path / 'rb.db'}"
    async with FakeDiscord() as discord, FakeOpenRouter() as openrouter:
        guild = next(iter(discord.guilds.values()))
        channel = guild.text_channel
        env = base_env(
            tmp_path,
            DATABASE_URL=url,
            ROUTERBOT_SECRET_KEY=secret_key,
            OPENROUTER_BASE_URL=openrouter.base_url,
            OPENROUTER_API_KEY=DEFAULT_KEY,
            DISCORD_TOKEN=discord.token,
            DISCORD_API_BASE=discord.api_base,
            DISCORD_GATEWAY_URL=discord.gateway_url,
            ROUTERBOT_ANSWER_HEARTBEAT_SECONDS="0.2",
            ROUTERBOT_ANSWER_STALE_SECONDS="1.5",
        )
        first = await start_worker("discord", env, cwd=tmp_path)
        try:
            await discord.wait_ready(timeout=20)
            earlier = await discord.slash(guild, channel, MEMBER, "chat", prompt="hello")
            await discord.wait_for(lambda: FOOTER_MARK in earlier.text(), what="a first answer")

            openrouter.words_delay = 0.2
            openrouter.script(answer=" ".join(["word"] * 60), times=None)
            ix = await discord.slash(guild, channel, MEMBER, "chat", prompt="a long one")
            asked = await discord.post_message(
                guild, channel, MEMBER, "go on", reply_to=earlier.original
            )
            reply = await discord.wait_for(
                lambda: _reply_to(discord, asked), what="the follow-up's first message"
            )
            await discord.wait_for(
                lambda: CURSOR in ix.text() and CURSOR in reply["content"],
                what="both answers streaming",
            )
            targets = await wait_journalled(url, 2)
            first.kill()
            assert await first.proc.wait() == -9
        finally:
            await first.stop()
        assert FOOTER_MARK not in ix.text() and FOOTER_MARK not in reply["content"]

        # The interaction token is stored only encrypted (the database files hold no plain
        # copy); the channel message needs no secret at all.
        by_kind = {t["via"]: t for t in targets}
        assert by_kind["channel"] == {
            "via": "channel",
            "channel": str(channel.id),
            "message": reply["id"],
        }
        sealed = by_kind["interaction"]["token"]
        assert KeyVault([secret_key]).decrypt(sealed.encode()).get_secret_value() == ix.token
        assert leaks(sqlite_files(tmp_path), [ix.token, earlier.token]) == []

        openrouter.words_delay = 0
        openrouter.scripts.clear()
        openrouter.script(answer="fine again", times=None)
        fresh = await start_worker("discord", env, cwd=tmp_path)
        try:
            await discord.wait_for(
                lambda: ix.text() == FINISHED and reply["content"] == FINISHED,
                timeout=20,
                what="both answers finished by the fresh process",
            )
            await discord.wait_for(
                lambda: (
                    len(discord.gateway.identifies) == 2
                    and len([s for s in discord.gateway.sessions if s.ready]) == 1
                ),
                timeout=20,
                what="the fresh process's gateway session",
            )
            after = await discord.slash(guild, channel, MEMBER, "chat", prompt="after the kill")
            await discord.wait_for(lambda: FOOTER_MARK in after.text(), what="a new answer")
            assert after.text().startswith("fine again")
        finally:
            assert await fresh.stop() == 0, fresh.stderr_text()
        _assert_clean(first)
        _assert_clean(fresh)
        assert "finished 2 answer(s) interrupted by another process" in fresh.stderr_text()
        assert await journalled(url) == []
        assert leaks(sqlite_files(tmp_path), [ix.token, earlier.token, after.token]) == []


def _reply_to(discord: FakeDiscord, asked: dict[str, Any]) -> dict[str, Any] | None:
    for message in discord.messages.values():
        if message.get("message_reference", {}).get("message_id") == asked["id"]:
            return message
    return None


def _assert_clean(worker: Worker) -> None:
    text = worker.stderr_text()
    assert "Traceback" not in text, text
    assert "fake-bot-token" not in text


# -- in process -----------------------------------------------------------------------------


async def _orphan(db: Database, targets: list[dict[str, Any]]) -> None:
    """Rows of a process that died a minute ago."""
    async with db.session() as session:
        await store.record_answers(
            session,
            platform="discord",
            owner="dead",
            targets=[json.dumps(t) for t in targets],
            now=utcnow() - timedelta(seconds=60),
        )


async def test_each_kind_of_message_is_finished_and_expired_tokens_are_dropped(
    tmp_path: Path,
) -> None:
    # The journal's own loop sweeps once at start, then not again during the test.
    async with running_bot(
        tmp_path, openrouter_api_key=DEFAULT_KEY, routerbot_answer_heartbeat_seconds=600
    ) as bot:
        inflight = bot.client.bridge.inflight
        assert inflight is not None
        # A long answer: the deferred response and a follow-up.
        bot.openrouter.script(answer=" ".join(["word"] * 500))
        long = await bot.slash("chat", prompt="long")
        await bot.finished(long)
        assert long.original is not None and len(long.followups) == 1
        expired = await bot.slash("chat", prompt="an old one")
        await bot.finished(expired)
        asked = await bot.discord.post_message(
            bot.guild, bot.guild.text_channel, MEMBER, "more", reply_to=long.original
        )
        reply = await bot.discord.wait_for(lambda: _reply_to(bot.discord, asked))
        await bot.discord.wait_for(lambda: FOOTER_MARK in reply["content"])

        def token_of(ix: FakeInteraction, *, age: float, ids: list[int]) -> dict[str, Any]:
            target = interaction_target(
                bot.runtime.vault,
                application_id=bot.discord.application_id,
                token=ix.token,
                created_at=time.time() - age,
            )(ids)
            assert target is not None
            return target

        original, followup = long.original, long.followups[0]
        old_text = expired.text()
        targets = [
            token_of(long, age=60, ids=[int(original["id"])]),
            token_of(long, age=60, ids=[int(original["id"]), int(followup["id"])]),
            token_of(expired, age=INTERACTION_TOKEN_SECONDS + 1, ids=[]),
            channel_target(bot.guild.text_channel.id)([int(reply["id"])]),
        ]
        await _orphan(bot.runtime.db, targets)
        before = len(bot.discord.calls)

        assert await inflight.journal.sweep() == 4

        edits = [c for c in bot.discord.calls[before:] if c.method == "PATCH"]
        assert [c.status for c in edits] == [200, 200, 200]
        assert [c.path.rsplit("/", 1)[-1] for c in edits] == [
            "@original",
            followup["id"],
            reply["id"],
        ]
        assert long.original["content"] == followup["content"] == FINISHED
        assert reply["content"] == FINISHED
        assert expired.text() == old_text  # its token expired: no call at all
        assert not any(expired.token in c.path for c in bot.discord.calls[before:])
        assert await journalled(bot.settings.database_url) == []


class _Parts:
    """A sink whose messages get ids 1, 2, … as they are written."""

    def __init__(self) -> None:
        self.message_ids: list[int] = []

    async def open(self) -> str | None:
        return None

    async def write(self, index: int, content: str) -> None:
        if index == len(self.message_ids):
            self.message_ids.append(index + 1)

    async def delete(self, index: int) -> None:
        del self.message_ids[index]


async def test_the_journal_follows_the_part_an_answer_is_writing(db: Database) -> None:
    inflight = AnswersInFlight(SqlStore(db), KeyVault([generate_key()]), interval=1, stale=30)
    journal = inflight.journal

    async def recorded() -> list[str | None]:
        await journal.flush()
        async with db.session() as session:
            rows = (await session.execute(select(AnswerInFlight))).scalars().all()
            return [json.loads(row.target)["message"] for row in rows]

    sink = JournaledSink(_Parts(), journal, channel_target(7))
    await sink.open()
    assert await recorded() == []  # no message yet: nothing to finish
    await sink.write(0, "a")
    await sink.write(0, "ab")
    assert await recorded() == ["1"]
    await sink.write(1, "c")
    assert await recorded() == ["2"]
    sink.end()
    await sink.write(1, "final")
    assert await recorded() == []

    cancelled = JournaledSink(_Parts(), journal, channel_target(7))
    await cancelled.write(0, "a")
    assert await recorded() == ["1"]  # never ended: left for another process to finish


async def test_shutdown_lets_answers_finish_within_the_grace_and_journals_the_rest(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        bot.openrouter.words_delay = 0.1
        bot.openrouter.script(answer=" ".join(["slow"] * 100))
        slow = await bot.slash("chat", prompt="slow")
        await bot.discord.wait_for(lambda: CURSOR in slow.text(), what="the slow answer")
        bot.openrouter.script(answer="quick and done")
        quick = await bot.slash("chat", prompt="quick")
        await bot.discord.wait_for(lambda: quick.original is not None, what="the quick defer")

        bot.client.shutdown_grace = 1.5
        await bot.client.close()

        assert FOOTER_MARK in quick.text()  # finished within the grace
        assert FOOTER_MARK not in slow.text() and CURSOR in slow.text()
        targets = await journalled(bot.settings.database_url)
        assert [(t["via"], t["message"]) for t in targets] == [("interaction", None)]
        assert slow.token not in json.dumps(targets)
