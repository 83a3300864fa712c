"""Discord options, form inputs and replies with hostile text, through the real discord.py
client: lone surrogates and NULs (the gateway's JSON can carry both), keys pasted with invisible
characters. Each is cleaned where it arrives and answered; nothing raises."""

from __future__ import annotations

from tests.fakes.openrouter import DEFAULT_KEY
from tests.integration.discord_harness import running_bot

NOT_A_KEY = "That does not look like an API key; nothing was stored."


def _prompts(bot) -> list[str]:
    return [r.json["messages"][-1]["content"] for r in bot.openrouter.chat_requests]


def _answer_to(bot, message):
    for m in bot.discord.messages.values():
        ref = m.get("message_reference") or {}
        if ref.get("message_id") == message["id"] and "\n-# " in m["content"]:
            return m
    return None


async def test_a_prompt_option_and_a_reply_with_surrogates_and_nul_are_cleaned(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await bot.slash("chat", prompt="caf\udce9 \ud83d\ude00 na\x00ive")
        text = await bot.finished(ix)
        assert text.startswith("echo: caf\ufffd \U0001f600 naive")
        assert _prompts(bot) == ["caf\ufffd \U0001f600 naive"]

        await bot.discord.post_message(
            bot.guild, bot.guild.text_channel, bot.member, "more\udfff\x00", reply_to=ix.original
        )
        answer = await bot.discord.wait_for(
            lambda: _answer_to(bot, bot.discord.last_message_from(bot.member)),
            what="the follow-up answer",
        )
        assert answer["content"].startswith("echo: more\ufffd")
        assert _prompts(bot)[-1] == "more\ufffd"


async def test_a_key_option_with_a_zero_width_space_is_stored_clean(tmp_path):
    async with running_bot(tmp_path) as bot:
        ix = await bot.slash("apikey set", user=bot.admin, key=f"\u201c{DEFAULT_KEY}\u200b\u201d")
        assert (await bot.replied(ix)).startswith("Saved the OpenRouter key sk-or-v1-")
        ix = await bot.slash("chat", prompt="hi")
        await bot.finished(ix)
        assert bot.openrouter.chat_requests[-1].headers["Authorization"] == f"Bearer {DEFAULT_KEY}"


async def test_a_key_option_no_header_can_carry_is_one_sentence(tmp_path):
    async with running_bot(tmp_path) as bot:
        ix = await bot.slash("apikey set", user=bot.admin, key="sk-or-v1-caf\u00e9-000000")
        assert await bot.replied(ix) == NOT_A_KEY


async def test_the_key_form_cleans_what_copying_added(tmp_path):
    async with running_bot(tmp_path) as bot:
        shown = await bot.slash("apikey set", user=bot.admin)
        await bot.discord.wait_for(lambda: shown.response_type, what="the modal")
        submitted = await bot.discord.submit_modal(shown, **{"API key": f"`{DEFAULT_KEY}`\u2060"})
        assert (await bot.replied(submitted)).startswith("Saved the OpenRouter key sk-or-v1-")
        checks = [r for r in bot.openrouter.requests if r.path.endswith("/key")]
        assert checks[-1].headers["Authorization"] == f"Bearer {DEFAULT_KEY}"


async def test_a_prompt_of_control_characters_only_is_empty(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await bot.slash("chat", prompt="\x00\x1b\x7f")
        assert await bot.replied(ix) == "The prompt is empty."
        assert ix.ephemeral
        assert bot.openrouter.chat_requests == []
