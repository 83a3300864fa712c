"""Richer chats on Discord, through discord.py over real HTTP: ``/chat`` with ``file``, ``web``
and ``effort`` options, attachments on a reply, the CDN download and its limits, sources as
links without embeds, and the one sentence for a model that cannot take an image."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openrouter import DEFAULT_KEY
from tests.fakes.openrouter_richer import REASONING_TEXT
from tests.integration.discord_harness import Bot, running_bot
from tests.integration.richer_support import (
    RICH_ID,
    TEXT_ONLY_ID,
    charged_nano,
    data_url,
    enrich,
    pdf,
    png,
)

MIB = 1024 * 1024


def _bot_answer_to(bot: Bot, message: dict) -> dict | None:
    for m in bot.discord.messages.values():
        ref = m.get("message_reference") or {}
        if ref.get("message_id") == message["id"] and "\n-# " in m["content"]:
            return m
    return None


async def _usage_rows(bot: Bot) -> list:
    from sqlalchemy import select

    from storage.models import UsageRecord

    async with bot.runtime.db.session() as session:
        return list((await session.execute(select(UsageRecord))).scalars())


async def test_chat_with_a_file_web_and_effort_then_a_reply_with_a_pdf(tmp_path: Path) -> None:
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        await enrich(bot.openrouter, bot.runtime.catalogue)
        channel = bot.guild.text_channel
        image = png(200, 100)
        attached = bot.discord.member_file(channel.id, "plot.png", image, content_type="image/png")
        ix = await bot.slash(
            "chat", prompt="explain this plot", file=attached, web=True, effort="high"
        )
        text = await bot.finished(ix)

        body = bot.openrouter.chat_requests[-1].json
        assert body["messages"][-1]["content"] == [
            {"type": "text", "text": "explain this plot"},
            {"type": "image_url", "image_url": {"url": data_url("image/png", image)}},
        ]
        assert body["tools"][0]["type"] == "openrouter:web_search"
        assert body["reasoning"] == {"effort": "high"}
        assert [d.complete for d in bot.discord.cdn_downloads] == [True]
        assert (
            "**Sources**\n1. [Story 1](<https://news.example/1>)\n"
            "2. [Story 2](<https://news.example/2>)\n-# "
        ) in text
        assert " out (1,024 reasoning) · 1 search · $" in text
        assert REASONING_TEXT not in text
        assert bot.discord.uploads == {}  # nothing re-posted
        [row] = await _usage_rows(bot)
        assert row.web_search_requests == 1 and row.reasoning_tokens == 1024
        assert row.cost_nano == charged_nano(bot.openrouter, row.generation_id)

        report = pdf(2)
        file = bot.discord.member_file(
            channel.id, "report.pdf", report, content_type="application/pdf"
        )
        reply = await bot.discord.post_message(
            bot.guild, channel, bot.member, "and this?", reply_to=ix.original, attachments=[file]
        )
        await bot.discord.wait_for(lambda: _bot_answer_to(bot, reply), what="the reply answer")
        messages = bot.openrouter.chat_requests[-1].json["messages"]
        assert messages[0]["content"].startswith(
            "explain this plot\n[attached: plot.png, PNG image 200×100, "
        )
        assert messages[-1]["content"][1]["file"] == {
            "filename": "report.pdf",
            "file_data": data_url("application/pdf", report),
        }


async def test_a_model_without_image_input_is_one_sentence(tmp_path: Path) -> None:
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        await enrich(bot.openrouter, bot.runtime.catalogue)
        attached = bot.discord.member_file(
            bot.guild.text_channel.id, "cat.jpg", png(), content_type="image/jpeg"
        )
        ix = await bot.slash("chat", prompt="what is it?", model=TEXT_ONLY_ID, file=attached)
        text = await bot.discord.wait_for(
            lambda: "Nothing was sent" in ix.text() and ix.text(), what="the refusal"
        )
        assert text == (
            f"`{TEXT_ONLY_ID}` does not take images; allowlisted models that do: `{RICH_ID}` "
            "(ask one of them with --model <id>). Nothing was sent."
        )
        assert bot.openrouter.chat_requests == []


async def test_size_limits_and_expired_links(tmp_path: Path) -> None:
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        await enrich(bot.openrouter, bot.runtime.catalogue)
        channel = bot.guild.text_channel

        async def refusal(**options: object) -> str:
            ix = await bot.slash("chat", prompt="look", **options)
            return await bot.discord.wait_for(
                lambda: "Nothing was sent" in ix.text() and ix.text(), what="a refusal"
            )

        big = bot.discord.member_file(
            channel.id, "big.pdf", b"%PDF-", content_type="application/pdf", size=11 * MIB
        )
        assert (await refusal(file=big)).startswith("`big.pdf` is too large: PDFs may be at most")
        assert bot.discord.cdn_downloads == []

        liar = bot.discord.member_file(
            channel.id, "liar.txt", b"a" * (24 * MIB), content_type="text/plain", size=100
        )
        assert (await refusal(file=liar)).startswith("`liar.txt` is too large: text files")
        [download] = bot.discord.cdn_downloads
        assert not download.complete

        expired = bot.discord.member_file(
            channel.id, "old.png", png(), content_type="image/png", ttl=-60
        )
        assert (await refusal(file=expired)).startswith("I could not download `old.png`")
        assert bot.openrouter.chat_requests == []
