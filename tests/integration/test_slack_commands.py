"""Slack slash commands through the real bolt app over HTTP: signing, acks, admin and member
paths for every command, the key modal, and ephemeral replies."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.models import ProviderKey
from tests.integration.slack_support import SlackHarness, slack_harness

KEY = "sk-or-v1-test-key-one-0001"
MEMBER_REFUSAL = "Only workspace admins can"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        yield harness


# -- signing and acks --------------------------------------------------------------------------


async def test_signed_command_is_acked_at_once(h: SlackHarness) -> None:
    sent = await h.command("/routerbot", "help")
    assert sent.status == 200
    assert sent.seconds < 0.5
    [reply] = h.replies(sent)
    assert reply["response_type"] == "ephemeral"
    assert "/chat [--model <id>] <prompt>" in reply["text"]


async def test_bad_signature_is_rejected(h: SlackHarness) -> None:
    sent = await h.command("/models", "", secret="not-the-secret")
    assert sent.status == 401
    assert h.replies(sent) == []


async def test_stale_timestamp_is_rejected(h: SlackHarness) -> None:
    sent = await h.command("/models", "", timestamp=int(time.time()) - 10 * 60)
    assert sent.status == 401
    assert h.replies(sent) == []


async def test_unsigned_request_is_rejected(h: SlackHarness) -> None:
    sent = await h.post("/slack/events", "command=/models&text=", {})
    assert sent.status == 401


async def test_ack_never_waits_for_the_web_api(h: SlackHarness) -> None:
    """With every Web API call taking a second, the ack still comes back at once: no call
    happens before it (an admin command needs users.info, then replies)."""
    h.slack.latency = 1.0
    sent = await h.command("/models", "remove openai/gpt-4o-mini", user="UADMIN", settle=False)
    assert sent.status == 200
    assert sent.seconds < 0.5
    await h.settle()
    assert len(h.slack.calls_to("users.info")) == 1
    assert "Removed `openai/gpt-4o-mini`" in h.reply_text(sent)


async def test_healthz(h: SlackHarness) -> None:
    async with h.http.get(h.url + "/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok"


# -- every command, admin and member ------------------------------------------------------------

# (command, text, what an admin sees, what a member sees, reply visible to the channel)
CASES = [
    ("/models", "", "Models allowed here", "Models allowed here", True),
    ("/models", "recommended", "Recommended models", "Recommended models", True),
    ("/routerbot", "models list", "Models allowed here", "Models allowed here", True),
    ("/models", "add openai/gpt-4o-mini", "Added `openai/gpt-4o-mini`", MEMBER_REFUSAL, False),
    ("/models", "remove openai/gpt-4o-mini", "Removed `openai/gpt-4o-mini`", MEMBER_REFUSAL, False),
    ("/models", "default openai/gpt-4o-mini", "is now the default model", MEMBER_REFUSAL, False),
    ("/apikey", f"set {KEY}", "Saved the OpenRouter key sk-or-v1-…0001", MEMBER_REFUSAL, False),
    ("/apikey", "status", "No API key is set", MEMBER_REFUSAL, False),
    ("/apikey", "clear", "There was no key to remove", MEMBER_REFUSAL, False),
    ("/costs", "", "No spend in this channel", "No spend in this channel", True),
    ("/costs", "workspace week", "No spend in this workspace", MEMBER_REFUSAL, False),
    ("/routerbot", "", "routerbot commands:", "routerbot commands:", False),
]


@pytest.mark.parametrize(("command", "text", "admin_sees", "member_sees", "public"), CASES)
async def test_commands_for_admins_and_members(
    h: SlackHarness, command: str, text: str, admin_sees: str, member_sees: str, public: bool
) -> None:
    member = await h.command(command, text, user="U1")
    admin = await h.command(command, text, user="UADMIN")
    for sent, expected in ((member, member_sees), (admin, admin_sees)):
        assert sent.status == 200
        [reply] = h.replies(sent)
        assert expected in reply["text"]
        assert reply["response_type"] == (
            "in_channel" if public and expected != MEMBER_REFUSAL else "ephemeral"
        )
    # Admin status is only looked up for commands that need it.
    needs_admin = member_sees == MEMBER_REFUSAL
    assert len(h.slack.calls_to("users.info")) == (2 if needs_admin else 0)


async def test_budget_replies_are_private(h: SlackHarness) -> None:
    for user in ("U1", "UADMIN"):
        for text in ("", "set 10", "clear --channel"):
            sent = await h.command("/budget", text, user=user)
            [reply] = h.replies(sent)
            assert reply["response_type"] == "ephemeral"
            assert reply["text"]


async def test_workspace_owner_is_an_admin_and_the_check_is_cached(h: SlackHarness) -> None:
    for _ in range(3):
        sent = await h.command("/models", "add openai/gpt-4o-mini", user="UOWNER")
        assert "Added" in h.reply_text(sent)
    assert len(h.slack.calls_to("users.info")) == 1


async def test_routerbot_admins_needs_no_users_info(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'slack.db'}"
    async with slack_harness(url, admins="slack:U1") as h:
        sent = await h.command("/models", "add openai/gpt-4o-mini", user="U1")
        assert "Added" in h.reply_text(sent)
        assert h.slack.calls_to("users.info") == []


async def test_failed_admin_check_says_so(h: SlackHarness) -> None:
    h.slack.fail("users.info", error="missing_scope")
    sent = await h.command("/apikey", "status", user="UADMIN")
    assert "could not check whether you are a workspace admin" in h.reply_text(sent)
    assert "missing_scope" in h.reply_text(sent)


async def test_usage_errors_are_one_private_sentence(h: SlackHarness) -> None:
    sent = await h.command("/models", "frobnicate")
    [reply] = h.replies(sent)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Unknown subcommand `frobnicate`.")
    sent = await h.command("/chat", "")
    assert "The prompt is empty." in h.reply_text(sent)


# -- keys ---------------------------------------------------------------------------------------


async def test_apikey_set_stores_encrypted_and_never_echoes(h: SlackHarness) -> None:
    sent = await h.command("/apikey", f"set {KEY}", user="UADMIN")
    assert "sk-or-v1-…0001" in h.reply_text(sent)
    async with h.runtime.db.session() as session:
        [row] = (await session.scalars(select(ProviderKey))).all()
    assert KEY.encode() not in row.ciphertext
    everything_sent = json.dumps([c.args for c in h.slack.calls], default=str)
    assert KEY not in everything_sent


async def test_member_cannot_set_a_key(h: SlackHarness) -> None:
    sent = await h.command("/apikey", f"set {KEY}", user="U1")
    assert MEMBER_REFUSAL in h.reply_text(sent)
    async with h.runtime.db.session() as session:
        assert (await session.scalars(select(ProviderKey))).all() == []
    assert h.openrouter.requests == []


async def test_apikey_opens_a_modal_for_admins_only(h: SlackHarness) -> None:
    member = await h.command("/apikey", "", user="U1", trigger_id="trig-member")
    assert MEMBER_REFUSAL in h.reply_text(member)
    assert h.slack.calls_to("views.open") == []

    admin = await h.command("/apikey", "", user="UADMIN", trigger_id="trig-admin")
    [call] = h.slack.calls_to("views.open")
    assert call.args["trigger_id"] == "trig-admin"
    assert h.replies(admin) == []
    [view] = h.slack.views
    assert view["callback_id"] == "routerbot_apikey"


async def test_expired_trigger_is_explained(h: SlackHarness) -> None:
    h.slack.expired_triggers.add("trig-old")
    sent = await h.command("/apikey", "", user="UADMIN", trigger_id="trig-old")
    assert "use /apikey set <key>" in h.reply_text(sent)


def _submission(h: SlackHarness, key: str, *, user: str, response_url: str) -> dict[str, object]:
    [view] = h.slack.views
    metadata = json.loads(view["private_metadata"])
    assert metadata["c"] == "C1"
    return {
        "type": "view_submission",
        "team": {"id": "T1", "domain": "t1"},
        "user": {"id": user, "team_id": "T1"},
        "api_app_id": "AFAKEAPP",
        "trigger_id": "trig-submit",
        "view": {
            "id": view["id"],
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": json.dumps({**metadata, "r": response_url}),
            "state": {"values": {"key": {"key": {"type": "plain_text_input", "value": key}}}},
        },
    }


async def test_modal_submission_saves_the_key_and_confirms_privately(h: SlackHarness) -> None:
    await h.command("/apikey", "", user="UADMIN")
    response_url = h.slack.response_url()
    sent = await h.interaction(_submission(h, KEY, user="UADMIN", response_url=response_url))
    assert sent.status == 200
    assert sent.seconds < 0.5
    await h.settle()
    [reply] = h.slack.responses_to(response_url)
    assert reply["response_type"] == "ephemeral"
    assert "Saved the OpenRouter key sk-or-v1-…0001" in reply["text"]
    assert KEY not in json.dumps(h.slack.responses)


async def test_modal_rejects_a_malformed_key_inline(h: SlackHarness) -> None:
    await h.command("/apikey", "", user="UADMIN")
    response_url = h.slack.response_url()
    sent = await h.interaction(
        _submission(h, "not a key", user="UADMIN", response_url=response_url)
    )
    assert json.loads(sent.body) == {
        "response_action": "errors",
        "errors": {"key": "That does not look like an API key."},
    }
    await h.settle()
    assert h.slack.responses_to(response_url) == []


async def test_modal_submission_rechecks_admin(h: SlackHarness) -> None:
    await h.command("/apikey", "", user="UADMIN")
    response_url = h.slack.response_url()
    await h.interaction(_submission(h, KEY, user="U1", response_url=response_url))
    await h.settle()
    assert MEMBER_REFUSAL in h.slack.responses_to(response_url)[0]["text"]


async def test_rejected_key_is_not_stored(h: SlackHarness) -> None:
    sent = await h.command("/apikey", "set sk-or-v1-wrong-key-00000000", user="UADMIN")
    assert "OpenRouter rejected that key; nothing was stored." in h.reply_text(sent)
