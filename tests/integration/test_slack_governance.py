"""Governance through the real bolt app over HTTP: limits on people named by Slack's escaped
mentions, budget notices delivered (ephemerally to the person, by direct message to the admin
who set the limit), system prompts, access, /audit, and every new admin command refused to
members."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.policies import CHANNEL_OFF
from bot.core.pricing import usd_to_nano
from bot.core.replies import Invocation
from storage import stores
from storage.models import UsageRecord
from tests.integration.slack_support import SlackHarness, slack_harness

KEY = "sk-or-v1-test-key-one-0001"
REFUSAL = "Only workspace admins can"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        yield harness


async def _seed(h: SlackHarness, user: str, usd: str) -> None:
    ws_id = await h.runtime.service.workspace_id(Invocation("slack", "T1", "C1", user))
    async with h.runtime.db.session() as session:
        await stores.record_usage(
            session,
            record=UsageRecord(
                workspace_id=ws_id,
                channel_id="C1",
                user_id=user,
                provider="openrouter",
                model_requested="anthropic/claude-3.5-sonnet",
                cost_nano=usd_to_nano(Decimal(usd)),
                cost_source="reported",
                outcome="ok",
                created_at=datetime.now(),
            ),
        )


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("/budget", "set 5 --user <@U1|u1>"),
        ("/budget", "set 2 --each-user"),
        ("/budget", "clear --user <@U1>"),
        ("/models", "default openai/gpt-4o-mini --channel"),
        ("/prompt", "set --channel Be brief."),
        ("/prompt", "clear"),
        ("/access", "channel off"),
        ("/access", "user <@UADMIN|boss> off"),
        ("/audit", ""),
        ("/routerbot", "audit 5"),
    ],
)
async def test_members_are_refused_every_new_admin_command(
    h: SlackHarness, command: str, text: str
) -> None:
    sent = await h.command(command, text, user="U1")
    [reply] = h.replies(sent)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith(REFUSAL), reply["text"]
    assert len(h.slack.calls_to("users.info")) == 1  # the admin check ran, server side


async def test_a_persons_limit_named_by_mention_and_its_notices(h: SlackHarness) -> None:
    sent = await h.command("/budget", "set 1 --user <@U1|u1>", user="UADMIN")
    assert "<@U1>'s monthly budget is now $1.00" in h.reply_text(sent)
    not_a_user = await h.command("/budget", "set 5 --user bob", user="UADMIN")
    assert "`bob` is not a Slack user; mention them" in h.reply_text(not_a_user)

    await _seed(h, "U1", "0.80")
    chat = await h.command("/chat", "hello", user="U1")
    [private] = h.replies(chat)
    assert private["response_type"] == "ephemeral"
    assert private["text"].startswith("⚠ You have used 80% of your $1.00 monthly budget")
    [dm] = [c for c in h.slack.calls_to("chat.postMessage") if c.args.get("channel") == "UADMIN"]
    assert dm.args["text"].startswith(
        "⚠ A budget you set has reached 80%: <@U1>'s $1.00 monthly budget"
    )
    overview = await h.command("/budget", "", user="UADMIN")
    assert "• <@U1>: $0.8000 of $1.00 (80%) — over 80 %" in h.reply_text(overview)
    mine = await h.command("/costs", "me", user="U1")
    # The text, then the person's own chart of spend per day, both private.
    await h.slack.wait_for(lambda: len(h.replies(mine)) == 2, 10)
    reply, chart = h.replies(mine)
    assert reply["response_type"] == "ephemeral" and "your own limit" in reply["text"]
    assert chart["response_type"] == "ephemeral"
    assert chart["blocks"][0]["type"] == "image" and "Your spend per day" in chart["text"]


async def test_prompt_access_and_audit(h: SlackHarness) -> None:
    await h.command("/prompt", "set --channel Reply in haiku.", user="UADMIN")
    await h.command("/chat", "the sea", user="U1")
    sent = h.openrouter.chat_requests[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": "Reply in haiku."}
    shown = await h.command("/prompt", "", user="U1")
    assert "> Reply in haiku." in h.reply_text(shown)

    await h.command("/access", "channel off", user="UADMIN")
    asked = len(h.openrouter.chat_requests)
    refused = await h.command("/chat", "hello", user="U1")
    assert h.reply_text(refused) == CHANNEL_OFF
    assert len(h.openrouter.chat_requests) == asked
    await h.command("/access", "user <@U1|u1> off", user="UADMIN")
    await h.command("/access", "channel on", user="UADMIN")
    assert "Your chats are turned off" in h.reply_text(await h.command("/chat", "hi", user="U1"))

    log = h.reply_text(await h.command("/audit", "10", user="UADMIN"))
    assert "<@UADMIN> · access.user · <@U1> · on → off" in log
    assert "access.channel · channel <#C1> · off → on" in log
    assert "prompt.set · channel <#C1> · — → Reply in haiku." in log
