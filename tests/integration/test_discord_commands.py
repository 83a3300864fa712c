"""Discord command registration, admin and member paths, autocomplete, and the error handler."""

from __future__ import annotations

import json

import pytest

from bot.discord_app import build_client
from bot.discord_app.sync import STATE_FILE
from tests.fakes.discord import FakeDiscord
from tests.fakes.openrouter import FakeModel
from tests.integration.discord_harness import MEMBER, running_bot

MANAGE_GUILD = "32"


def _syncs(bot):
    return [c for c in bot.discord.calls if c.method == "PUT" and c.path.endswith("/commands")]


async def test_commands_are_registered_once_and_not_resynced_when_unchanged(tmp_path):
    async with FakeDiscord() as discord, running_bot(tmp_path, discord=discord) as bot:
        (put,) = _syncs(bot)
        assert put.path == f"/applications/{bot.discord.application_id}/commands"
        by_name = {c["name"]: c for c in put.json}
        assert set(by_name) == {
            "chat",
            "models",
            "apikey",
            "costs",
            "budget",
            "help",
            "prompt",
            "access",
            "audit",
        }
        assert all(c["contexts"] == [0] and c["integration_types"] == [0] for c in put.json)
        assert str(by_name["apikey"]["default_member_permissions"]) == MANAGE_GUILD
        assert str(by_name["budget"]["default_member_permissions"]) == MANAGE_GUILD
        assert str(by_name["audit"]["default_member_permissions"]) == MANAGE_GUILD
        # prompt and access mix what anyone may see with what admins change.
        assert by_name["access"]["default_member_permissions"] is None
        assert by_name["chat"]["default_member_permissions"] is None
        subs = {o["name"] for o in by_name["models"]["options"]}
        # Issue 11 registers /models search and /models info (SPEC §2's grammar on Discord).
        assert subs == {"list", "add", "remove", "default", "recommended", "search", "info"}
        model = next(o for o in by_name["chat"]["options"] if o["name"] == "model")
        assert model["autocomplete"] is True
        assert (tmp_path / "data" / STATE_FILE).exists()

        # A restart with the same tree: no command write at all, and the commands work.
        async with running_bot(tmp_path, discord=discord) as again:
            assert len(_syncs(again)) == 1
            ix = await again.slash("help")
            assert "/chat" in await again.replied(ix)


async def test_a_changed_tree_is_synced_again(tmp_path):
    async with FakeDiscord() as discord:
        async with running_bot(tmp_path, discord=discord) as bot:
            assert len(_syncs(bot)) == 1
        state = tmp_path / "data" / STATE_FILE
        recorded = json.loads(state.read_text())
        state.write_text(json.dumps(dict.fromkeys(recorded, "0" * 64)))
        async with running_bot(tmp_path, discord=discord) as bot:
            assert len(_syncs(bot)) == 2


async def test_member_is_refused_admin_commands_even_without_the_permission_hint(tmp_path):
    async with running_bot(tmp_path) as bot:
        for command, options in [
            ("models add", {"id": "openai/gpt-4o"}),
            ("models remove", {"id": "openai/gpt-4o-mini"}),
            ("apikey status", {}),
            ("apikey set", {}),
            ("budget set", {"amount": "50"}),
            ("costs", {"scope": "workspace"}),
        ]:
            ix = await bot.slash(command, user=bot.member, **options)
            text = await bot.replied(ix)
            assert ix.response_type == 4 and ix.ephemeral, command
            assert text.startswith("Only server admins"), (command, text)
        # Nothing reached the provider or changed the allowlist.
        assert not [r for r in bot.openrouter.requests if "/model" in r.path]
        ix = await bot.slash("models list", user=bot.member)
        assert "openai/gpt-4o-mini" in await bot.replied(ix)


async def test_admin_manages_the_allowlist_privately(tmp_path):
    async with running_bot(tmp_path) as bot:
        bot.openrouter.add_model(FakeModel("openai/gpt-4o", "GPT-4o", "0.0000025", "0.00001"))
        ix = await bot.slash("models add", user=bot.admin, id="openai/gpt-4o")
        text = await bot.replied(ix)
        assert ix.response_type == 5 and ix.ephemeral
        assert text.startswith("Added `openai/gpt-4o`")
        ix = await bot.slash("models default", user=bot.owner, id="openai/gpt-4o")
        assert "now the default" in await bot.replied(ix)
        ix = await bot.slash("models list", user=bot.member)
        listing = await bot.replied(ix)
        assert not ix.ephemeral and "`openai/gpt-4o` $2.50 / $10.00 — default" in listing
        ix = await bot.slash("models add", user=bot.admin, id="nobody/no-such-model")
        assert "nobody/no-such-model" in await bot.replied(ix)


async def test_budgets_are_admin_only_and_private(tmp_path):
    async with running_bot(tmp_path) as bot:
        ix = await bot.slash("budget set", user=bot.admin, amount="abc")
        text = await bot.replied(ix)
        assert ix.response_type == 4 and ix.ephemeral  # refused before any defer
        assert "is not an amount in USD" in text and "Usage" not in text
        ix = await bot.slash("budget set", user=bot.admin, amount="12.50", channel=True)
        text = await bot.replied(ix)
        assert ix.response_type == 5 and ix.ephemeral and "$12.50" in text
        ix = await bot.slash("budget show", user=bot.owner)
        assert "$12.50" in await bot.replied(ix) and ix.ephemeral


async def test_routerbot_admins_grants_admin_without_discord_permissions(tmp_path):
    async with running_bot(tmp_path, routerbot_admins=f"discord:{MEMBER.id}") as bot:
        ix = await bot.slash("costs", user=bot.member, scope="workspace", period="all")
        text = await bot.replied(ix)
        assert ix.ephemeral and text.startswith("No spend in this workspace for all time.")


async def test_autocomplete_offers_at_most_25_filtered_allowed_models(tmp_path):
    async with running_bot(tmp_path) as bot:
        choices = await bot.discord.autocomplete(
            bot.guild,
            bot.guild.text_channel,
            bot.member,
            "chat",
            focused="model",
            prompt="hi",
            model="GPT",
        )
        assert [c["value"] for c in choices] == ["openai/gpt-4o-mini"]
        everything = await bot.discord.autocomplete(
            bot.guild, bot.guild.text_channel, bot.member, "chat", focused="model", model=""
        )
        assert everything[0]["name"] == "anthropic/claude-3.5-sonnet (default)"
        for i in range(30):
            bot.openrouter.add_model(_fake_model(f"acme/model-{i:02d}"))
            ix = await bot.slash("models add", user=bot.admin, id=f"acme/model-{i:02d}")
            await bot.replied(ix)
        choices = await bot.discord.autocomplete(
            bot.guild, bot.guild.text_channel, bot.member, "chat", focused="model", model="acme"
        )
        assert len(choices) == 25  # the cache was invalidated by the adds
        removable = await bot.discord.autocomplete(
            bot.guild, bot.guild.text_channel, bot.admin, "models remove", focused="id", id="29"
        )
        assert [c["value"] for c in removable] == ["acme/model-29"]
        assert all(len(c["name"]) <= 100 and c["value"].startswith("acme/") for c in choices)


def _fake_model(model_id):
    return FakeModel(model_id, model_id, "0.000001", "0.000002")


async def test_unexpected_failures_are_one_sentence(tmp_path, monkeypatch):
    async with running_bot(tmp_path) as bot:

        async def broken(*args, **kwargs):
            raise RuntimeError("database on fire")

        monkeypatch.setattr(bot.client.bridge, "run", broken)
        ix = await bot.slash("models list")
        text = await bot.replied(ix)
        assert ix.ephemeral and text.startswith("Something went wrong inside routerbot")
        assert "fire" not in text and "Traceback" not in text


@pytest.mark.parametrize(
    ("shard_ids", "count", "problem"),
    [("0,2", 2, "between 0 and 1"), ("0", None, "needs DISCORD_SHARD_COUNT"), ("x", 2, "numbers")],
)
def test_bad_shard_settings_are_named(tmp_path, shard_ids, count, problem):
    from bot.config import Settings
    from bot.core.errors import ConfigurationError

    settings = Settings(_env_file=None, discord_shard_ids=shard_ids, discord_shard_count=count)
    with pytest.raises(ConfigurationError, match=problem):
        build_client(settings, None, None)  # type: ignore[arg-type]
