"""Governance through the real discord.py client against the fake Discord: typed user
options for budgets and access, notices as ephemeral follow-ups and direct messages, the
system prompt and /audit, and every new admin command refused to members on the server
side."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from bot.core.policies import USER_OFF
from bot.core.pricing import usd_to_nano
from bot.core.replies import Invocation
from storage import stores
from storage.models import UsageRecord
from tests.fakes.openrouter import DEFAULT_KEY
from tests.integration.discord_harness import running_bot


async def _as(bot, who, command, **options):
    """``/command`` typed by ``who`` (options may include one named ``user``)."""
    return await bot.discord.slash(bot.guild, bot.guild.text_channel, who, command, **options)


async def _seed(bot, user, usd: str) -> None:
    ctx = Invocation("discord", str(bot.guild.id), str(bot.guild.text_channel.id), str(user.id))
    ws_id = await bot.runtime.service.workspace_id(ctx)
    async with bot.runtime.db.session() as session:
        await stores.record_usage(
            session,
            record=UsageRecord(
                workspace_id=ws_id,
                channel_id=ctx.channel_id,
                user_id=ctx.user_id,
                provider="openrouter",
                model_requested="anthropic/claude-3.5-sonnet",
                cost_nano=usd_to_nano(Decimal(usd)),
                cost_source="reported",
                outcome="ok",
                created_at=datetime.now(),
            ),
        )


async def test_members_are_refused_every_new_admin_command(tmp_path):
    async with running_bot(tmp_path) as bot:
        for command, options in [
            ("budget set", {"amount": "5", "user": bot.member}),
            ("budget set", {"amount": "5", "each_user": True}),
            ("budget clear", {"user": bot.member}),
            ("models default", {"id": "openai/gpt-4o-mini", "channel": True}),
            ("prompt set", {"text": "Be brief."}),
            ("prompt clear", {"channel": True}),
            ("access channel", {"state": "off"}),
            ("access user", {"user": bot.admin, "state": "off"}),
            ("audit", {}),
        ]:
            ix = await _as(bot, bot.member, command, **options)
            text = await bot.replied(ix)
            assert ix.response_type == 4 and ix.ephemeral, command
            assert text.startswith("Only server admins"), (command, text)
        # What applies to them, anyone may see.
        ix = await bot.slash("access show", user=bot.member)
        assert "Chats in this channel: on." in await bot.replied(ix) and ix.ephemeral


async def test_a_members_limit_from_the_user_option_and_its_notices(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await _as(bot, bot.admin, "budget set", amount="1", user=bot.member)
        assert f"<@{bot.member.id}>'s monthly budget is now $1.00" in await bot.replied(ix)
        ix = await _as(bot, bot.admin, "budget set", amount="1", channel=True, user=bot.member)
        assert "Give one of channel, user and each_user." in await bot.replied(ix)

        await _seed(bot, bot.member, "0.80")
        ix = await bot.slash("chat", user=bot.member, prompt="hello")
        await bot.finished(ix)
        await bot.discord.wait_for(lambda: bot.discord.direct_messages, what="the admin's DM")
        [(to, text)] = bot.discord.direct_messages
        assert to == bot.admin.id
        assert text.startswith(f"⚠ A budget you set has reached 80%: <@{bot.member.id}>'s $1.00")
        await bot.discord.wait_for(lambda: ix.followups, what="the private notice")
        [private] = ix.followups
        assert private["content"].startswith("⚠ You have used 80% of your $1.00 monthly budget")
        assert private["flags"] & 64  # ephemeral

        ix = await bot.slash("costs", user=bot.member, scope="me")
        mine = await bot.replied(ix)
        assert ix.ephemeral and "Your monthly limit (your own limit" in mine


async def test_prompt_access_and_audit(tmp_path):
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        ix = await bot.slash("prompt set", user=bot.admin, text="Answer in haiku.", channel=True)
        assert "Saved the system prompt of this channel" in await bot.replied(ix)
        ix = await bot.slash("chat", user=bot.member, prompt="the sea")
        await bot.finished(ix)
        first = bot.openrouter.chat_requests[-1].json["messages"][0]
        assert first == {"role": "system", "content": "Answer in haiku."}

        ix = await _as(bot, bot.owner, "access user", state="off", user=bot.member)
        assert "are now off" in await bot.replied(ix)
        asked = len(bot.openrouter.chat_requests)
        ix = await bot.slash("chat", user=bot.member, prompt="hello")
        await bot.discord.wait_for(lambda: USER_OFF in ix.text(), what="the refusal")
        assert len(bot.openrouter.chat_requests) == asked

        ix = await bot.slash("audit", user=bot.admin, count=5)
        log = await bot.replied(ix)
        assert ix.ephemeral
        assert f"<@{bot.owner.id}> · access.user · <@{bot.member.id}> · on → off" in log
        assert "prompt.set · channel <#" in log and "Answer in haiku." in log
