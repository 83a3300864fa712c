"""``/chat`` on Discord: deferred, streamed with a per-message edit throttle, split at 2,000
characters, mentions disabled, provider errors as one sentence, threads rolled up."""

from __future__ import annotations

import itertools
import re

from sqlalchemy import select

from storage.models import UsageRecord
from tests.fakes.discord_payloads import EPHEMERAL, LOADING
from tests.fakes.openrouter import DEFAULT_KEY, Fault
from tests.integration.discord_harness import running_bot

FOOTER = re.compile(r"-# \S+ · \d+ in · \d+ out · ≈?\$[\d.]+ · \d+\.\d s$")


async def _usage_rows(bot):
    async with bot.runtime.db.session() as session:
        return list((await session.execute(select(UsageRecord))).scalars())


def _edits_of(bot, path_end):
    return [c for c in bot.discord.calls if c.method == "PATCH" and c.path.endswith(path_end)]


async def test_chat_defers_publicly_streams_and_ends_with_the_footer(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        bot.openrouter.words_delay = 0.08  # ~25 words over 2 s: several throttled edits
        answer = " ".join(f"word{i}" for i in range(25))
        bot.openrouter.script(answer=answer)
        ix = await bot.slash("chat", prompt="count for me")
        text = await bot.finished(ix)

        assert ix.response_type == 5 and not ix.ephemeral  # deferred, public
        assert ix.responded_after < 3.0
        body, footer = text.split("\n\n")
        assert body == answer
        assert FOOTER.match(footer), footer
        assert footer.startswith("-# anthropic/claude-3.5-sonnet · ")

        edits = [c for c in _edits_of(bot, "/messages/@original") if c.status == 200]
        live = [c for c in edits if "▌" in c.json["content"]]  # live edits show a cursor
        assert live and edits[-1] not in live, "the answer was not streamed"
        (defer,) = [c for c in bot.discord.calls if c.path.endswith("/callback")]
        times = [defer.at] + [c.at for c in live]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 0.9 for gap in gaps), gaps  # at most about once a second
        (row,) = await _usage_rows(bot)
        assert row.channel_id == str(bot.guild.text_channel.id)
        assert row.outcome == "ok"


async def test_long_answer_is_split_without_breaking_code_fences(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        code = "\n".join(f"print({i})  # a line of code that takes room" for i in range(60))
        prose = "\n\n".join(f"Paragraph {i}. " + "lorem ipsum " * 20 for i in range(8))
        answer = f"{prose}\n\n```python\n{code}\n```\n\nThat is all."
        assert len(answer) > 4000
        bot.openrouter.script(answer=answer)
        ix = await bot.slash("chat", prompt="write a lot")
        await bot.finished(ix, timeout=20)

        parts = [m["content"] for m in ix.messages()]
        assert len(parts) >= 3 and all(len(p) <= 2000 for p in parts)
        assert all(p.count("```") % 2 == 0 for p in parts), "a code block was broken"
        assert "-# " in parts[-1] and all("-# " not in p for p in parts[:-1])
        assert all(not m["flags"] & EPHEMERAL for m in ix.followups)
        assert all(
            c.query.get("wait") == "1"
            for c in bot.discord.calls
            if c.method == "POST" and c.path.startswith("/webhooks/")
        )
        joined = "".join(p.replace("```python\n", "").replace("```", "") for p in parts)
        assert "print(59)" in joined and "That is all." in parts[-1]


async def test_mentions_are_disabled_on_everything_sent(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        bot.openrouter.script(answer="Hello @everyone and @here and <@123456789012345678>!")
        ix = await bot.slash("chat", prompt="ping everyone")
        await bot.finished(ix)
        followup = await bot.discord.post_message(
            bot.guild, bot.guild.text_channel, bot.member, "again", reply_to=ix.original
        )
        await bot.discord.wait_for(lambda: _reply_to(bot, followup), what="the reply answer")
        help_ix = await bot.slash("help")
        await bot.replied(help_ix)

        sends = bot.discord.sends()
        assert len(sends) >= 4
        for call in sends:
            body = call.json.get("data", call.json) if "type" in call.json else call.json
            mentions = body.get("allowed_mentions")
            assert mentions is not None, (call.method, call.path)
            assert mentions["parse"] == [], (call.method, call.path)
            assert not mentions.get("users") and not mentions.get("roles")
            assert not mentions.get("replied_user")


def _reply_to(bot, message):
    """The bot's final answer replying to ``message`` (it carries the footer), if any."""
    for m in bot.discord.messages.values():
        ref = m.get("message_reference") or {}
        if ref.get("message_id") == message["id"] and "\n-# " in m["content"]:
            return m
    return None


async def test_replying_to_the_answer_continues_with_history(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await bot.slash("chat", prompt="my name is Ada", model="openai/gpt-4o-mini")
        await bot.finished(ix)
        channel = bot.guild.text_channel
        await bot.discord.post_message(
            bot.guild, channel, bot.member, "what is my name?", reply_to=ix.original
        )
        first = await bot.discord.wait_for(
            lambda: _reply_to(bot, bot.discord.last_message_from(bot.member)),
            what="the follow-up answer",
        )
        assert first["content"].startswith("echo: what is my name?")
        assert "openai/gpt-4o-mini" in first["content"]  # the conversation's model

        # Replying to the follow-up answer continues the same conversation again.
        await bot.discord.post_message(
            bot.guild, channel, bot.member, "and again?", reply_to=first, ping=False
        )
        await bot.discord.wait_for(
            lambda: _reply_to(bot, bot.discord.last_message_from(bot.member)),
            what="the second follow-up",
        )
        last = bot.openrouter.chat_requests[-1].json
        assert [m["content"] for m in last["messages"]] == [
            "my name is Ada",
            "echo: my name is Ada",
            "what is my name?",
            "echo: what is my name?",
            "and again?",
        ]
        assert last["model"] == "openai/gpt-4o-mini"
        # Replies to anyone else's message are ignored.
        chats = len(bot.openrouter.chat_requests)
        other = await bot.discord.post_message(bot.guild, channel, bot.admin, "unrelated")
        await bot.discord.post_message(bot.guild, channel, bot.member, "re", reply_to=other)
        ix2 = await bot.slash("help")
        await bot.replied(ix2)  # the bot has processed the gateway events before this one
        assert len(bot.openrouter.chat_requests) == chats


async def test_chat_in_a_thread_counts_for_the_parent_channel(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await bot.slash("chat", prompt="from a thread", thread=True)
        await bot.finished(ix)
        (row,) = await _usage_rows(bot)
        assert row.channel_id == str(bot.guild.text_channel.id)


async def test_out_of_credits_before_the_stream_is_one_sentence(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        bot.openrouter.script(Fault.http(402, message="Insufficient credits"))
        ix = await bot.slash("chat", prompt="hello")
        text = await bot.discord.wait_for(
            lambda: ix.original and not ix.original["flags"] & LOADING and ix.text(),
            what="the error",
        )
        assert "402" in text and "Nothing was charged" in text
        assert "Traceback" not in text and "\n" not in text.strip()


async def test_cut_off_mid_stream_keeps_the_partial_answer_marked(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        bot.openrouter.script(
            Fault.error_chunk(after=3, code=502), answer="one two three four five"
        )
        ix = await bot.slash("chat", prompt="hello")
        text = await bot.finished(ix)
        assert text.startswith("one two three")
        assert "four" not in text
        assert "⚠" in text and "cut off" in text
        (row,) = await _usage_rows(bot)
        assert row.outcome == "cut_off"


async def test_a_quick_answer_costs_one_edit(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await bot.slash("chat", prompt="quick")
        await bot.finished(ix)
        assert len(_edits_of(bot, "/messages/@original")) == 1


async def test_rate_limited_edits_are_retried(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        bot.discord.rate_limit("PATCH", r"/messages/@original$", retry_after=0.3, times=1)
        ix = await bot.slash("chat", prompt="hello there")
        text = await bot.finished(ix)
        assert text.startswith("echo: hello there")
        assert any(c.status == 429 for c in bot.discord.calls)


async def test_unknown_model_id_form_is_refused_privately_without_a_defer(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await bot.slash("chat", prompt="hi", model="not a model")
        text = await bot.replied(ix)
        assert ix.response_type == 4 and ix.ephemeral
        assert "is not a model id" in text and "Usage" not in text
        assert bot.openrouter.chat_requests == []
