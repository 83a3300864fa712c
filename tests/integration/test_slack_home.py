"""The Home tab (``app_home_opened`` -> ``views.publish``) for a member and for an admin: what
each may see, the admin's chart uploaded once per chart and decoded back to its bars, and the
admins' button opening the key form."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.replies import Invocation
from bot.slack_app.home import KEY_ACTION
from storage.models import utcnow
from tests.chart_reader import read_chart
from tests.integration.slack_support import DEFAULT_MODEL, SlackHarness, slack_harness
from tests.integration.spend_support import seed

KEY = "sk-or-v1-test-key-one-0001"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        admin = Invocation("slack", "T1", "C1", "UADMIN", is_admin=True)
        await harness.runtime.service.spend.set_budget(admin, Decimal(50), channel=False)
        now = utcnow()
        earlier = now - timedelta(days=min(3, now.day - 1))
        await seed(harness.runtime, Invocation("slack", "T1", "C1", "U1"), "0.40", when=now)
        await seed(harness.runtime, Invocation("slack", "T1", "C2", "U2"), "3.00", when=earlier)
        harness.slack.add_user("T1", "U2")
        yield harness


async def open_home(h: SlackHarness, user: str, channel: str, event_id: str) -> dict[str, Any]:
    event = {"type": "app_home_opened", "user": user, "channel": channel, "tab": "home"}
    await h.event(event, event_id=event_id)
    return h.slack.home_views[user]


def texts(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


async def test_a_members_home_shows_their_models_spend_and_limit_only(h: SlackHarness) -> None:
    asked = len(h.openrouter.requests)
    view = await open_home(h, "U1", "D1", "EvHome1")
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    shown = texts(view)
    month = f"{utcnow():%B %Y}"
    assert f"`{DEFAULT_MODEL}` — $3.00 in · $15.00 out per 1M tokens  ⭐ *default*" in shown
    assert "`openai/gpt-4o-mini` — $0.15 in · $0.60 out per 1M tokens" in shown
    assert f"Your spend in {month}" in shown
    assert "*$0.4000* · 1 chat" in shown
    assert "Workspace limit: $3.40 of $50.00 (6%)" in shown
    # Nothing of anyone else, nothing for admins.
    for secret in ("U2", "UADMIN", "$3.00 ·", "sk-or-v1", "<#C2>", "Workspace (admins)"):
        assert secret not in shown, secret
    assert not [b for b in view["blocks"] if b["type"] in ("image", "actions")]
    assert not h.slack.calls_to("files.getUploadURLExternal")
    assert len(h.openrouter.requests) == asked, "a member's home asks the provider nothing"


async def test_an_admins_home_adds_the_masked_key_limits_spend_and_chart(h: SlackHarness) -> None:
    view = await open_home(h, "UADMIN", "D2", "EvHome2")
    shown = texts(view)
    assert "sk-or-v1-…0001" in shown and KEY not in shown
    assert "• Workspace: $3.40 of $50.00 (6%)" in shown
    assert shown.index("<#C2>") < shown.index("<#C1>")  # by spend
    assert shown.index("<@U2>") < shown.index("<@U1>")
    assert "Workspace total: $3.40 · 2 chats" in shown
    [image] = [b for b in view["blocks"] if b["type"] == "image"]
    chart = h.slack.files[image["slack_file"]["id"]]
    assert chart.completed and chart.channel is None  # private to the app
    now = utcnow()
    days_with_spend = len({now.date(), (now - timedelta(days=min(3, now.day - 1))).date()})
    assert len(read_chart(chart.data or b"").bars) == days_with_spend
    [actions] = [b for b in view["blocks"] if b["type"] == "actions"]
    [button] = actions["elements"]
    assert button["action_id"] == KEY_ACTION and button["value"] == "D2"

    # Opening it again reads afresh but uploads nothing new while the chart is the same.
    uploads = len(h.slack.calls_to("files.getUploadURLExternal"))
    await open_home(h, "UADMIN", "D2", "EvHome3")
    assert h.slack.publish_count == 2
    assert len(h.slack.calls_to("files.getUploadURLExternal")) == uploads

    # The button opens the key form, which confirms in the admin's DM.
    sent = await h.interaction(
        {
            "type": "block_actions",
            "team": {"id": "T1", "domain": "t1"},
            "user": {"id": "UADMIN", "team_id": "T1"},
            "api_app_id": "AFAKEAPP",
            "trigger_id": "trig-home",
            "container": {"type": "view", "view_id": "VHUADMIN"},
            "view": {"id": "VHUADMIN", "type": "home"},
            "actions": [{"type": "button", "action_id": KEY_ACTION, "value": "D2"}],
        }
    )
    assert sent.status == 200
    await h.settle()
    [form] = h.slack.views
    assert form["callback_id"] == "routerbot_apikey"
    assert json.loads(form["private_metadata"])["c"] == "D2"


async def test_a_chart_slack_cannot_show_yet_leaves_the_rest_of_the_home(
    h: SlackHarness,
) -> None:
    h.slack.fail("views.publish", error="invalid_blocks")
    view = await open_home(h, "UADMIN", "D2", "EvHome4")
    assert not [b for b in view["blocks"] if b["type"] == "image"]
    assert "could not be shown just now" in texts(view)
    # The next opening tries the chart again.
    view = await open_home(h, "UADMIN", "D2", "EvHome5")
    assert [b for b in view["blocks"] if b["type"] == "image"]


async def test_a_members_own_limit_is_on_their_home_and_each_person_on_the_admins(
    h: SlackHarness,
) -> None:
    admin = Invocation("slack", "T1", "C1", "UADMIN", is_admin=True)
    spend = h.runtime.service.spend
    await spend.set_budget(admin, Decimal(2), channel=False, user="U1")
    await spend.set_budget(admin, Decimal(1), channel=False, each_user=True)
    mine = texts(await open_home(h, "U1", "D1", "EvHomeOwn"))
    assert "Your limit: $0.4000 of $2.00 (20%)" in mine
    theirs = texts(await open_home(h, "U2", "D2", "EvHomeEach"))
    assert "Your limit: $3.00 of $1.00 (300%)" in theirs  # the each-user limit binds them
    overview = texts(await open_home(h, "UADMIN", "D3", "EvHomeAdmin"))
    assert "<@U1>: $0.4000 of $2.00 (20%)" in overview
    assert "Each person without a limit of their own: $1.00 a month" in overview
