"""``/apikey`` on Discord: the modal keeps the key out of every message; keys per guild."""

from __future__ import annotations

import json

from tests.fakes.discord import FakeGuild
from tests.fakes.openrouter import DEFAULT_KEY
from tests.integration.discord_harness import OTHER_KEY, running_bot


def _everything_sent(bot) -> str:
    return "\n".join(json.dumps(c.json) for c in bot.discord.calls if c.json is not None)


async def test_apikey_set_without_a_key_opens_a_modal_and_never_echoes_the_key(tmp_path):
    async with running_bot(tmp_path) as bot:
        shown = await bot.slash("apikey set", user=bot.admin)
        await bot.discord.wait_for(lambda: shown.response_type, what="the modal")
        assert shown.response_type == 9  # the modal is the first response, no defer before it
        assert shown.responded_after < 3.0
        form = shown.response_data
        assert form["components"][0]["type"] == 18  # a label around the text input

        submitted = await bot.discord.submit_modal(shown, **{"API key": DEFAULT_KEY})
        text = await bot.replied(submitted)
        assert submitted.response_type == 5 and submitted.ephemeral  # deferred, then edited
        assert text.startswith("Saved the OpenRouter key sk-or-v1-…")
        assert DEFAULT_KEY not in _everything_sent(bot)
        assert DEFAULT_KEY[-12:] not in _everything_sent(bot)

        status = await bot.slash("apikey status", user=bot.admin)
        assert "sk-or-v1-…" in await bot.replied(status) and status.ephemeral
        assert DEFAULT_KEY not in _everything_sent(bot)


async def test_a_rejected_key_stores_nothing(tmp_path):
    async with running_bot(tmp_path) as bot:
        shown = await bot.slash("apikey set", user=bot.owner)
        await bot.discord.wait_for(lambda: shown.response_type, what="the modal")
        wrong = "sk-or-v1-" + "f" * 56
        submitted = await bot.discord.submit_modal(shown, **{"API key": wrong})
        text = await bot.replied(submitted)
        assert "rejected that key; nothing was stored" in text
        assert wrong not in _everything_sent(bot)
        clear = await bot.slash("apikey clear", user=bot.owner)
        assert await bot.replied(clear) == "There was no key to remove."


async def test_two_guilds_with_their_own_keys_never_cross(tmp_path):
    acme, globex = FakeGuild("Acme"), FakeGuild("Globex")
    async with running_bot(tmp_path, guilds=[acme, globex]) as bot:
        # Acme sets its key with the option, Globex through the form.
        ix = await bot.slash("apikey set", user=bot.admin, guild=acme, key=DEFAULT_KEY)
        assert (await bot.replied(ix)).startswith("Saved") and ix.ephemeral
        shown = await bot.slash("apikey set", user=bot.admin, guild=globex)
        await bot.discord.wait_for(lambda: shown.response_type, what="the modal")
        await bot.replied(await bot.discord.submit_modal(shown, **{"API key": OTHER_KEY}))

        for guild, key in [(acme, DEFAULT_KEY), (globex, OTHER_KEY), (acme, DEFAULT_KEY)]:
            ix = await bot.slash("chat", guild=guild, prompt=f"hello from {guild.name}")
            await bot.finished(ix)
            request = bot.openrouter.chat_requests[-1]
            assert request.headers["Authorization"] == f"Bearer {key}"
            assert request.json["messages"][-1]["content"] == f"hello from {guild.name}"

        # Clearing Acme's key leaves Globex's alone.
        ix = await bot.slash("apikey clear", user=bot.admin, guild=acme)
        await bot.replied(ix)
        ix = await bot.slash("chat", guild=acme, prompt="still there?")
        text = await bot.discord.wait_for(lambda: "API key" in ix.text() and ix.text())
        assert "No OpenRouter API key is set" in text
        ix = await bot.slash("chat", guild=globex, prompt="still there?")
        await bot.finished(ix)
        assert bot.openrouter.chat_requests[-1].headers["Authorization"] == f"Bearer {OTHER_KEY}"
        assert DEFAULT_KEY not in _everything_sent(bot) and OTHER_KEY not in _everything_sent(bot)
