"""Multi-workspace Slack: the OAuth install into our database, tokens encrypted, and two
workspaces with different keys chatting in parallel without ever crossing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from storage.models import SlackInstallation
from tests.integration.slack_support import install, slack_harness

KEY_1 = "sk-or-v1-team-one-key-000000000001"
KEY_2 = "sk-or-v1-team-two-key-000000000002"


async def test_install_stores_the_installation_encrypted(tmp_path: Path) -> None:
    db_file = tmp_path / "slack.db"
    async with slack_harness(f"sqlite:///{db_file}", teams=("T1",), oauth=True) as h:
        [call] = h.slack.calls_to("oauth.v2.access")
        assert call.args["code"].startswith("code-")
        async with h.runtime.db.session() as session:
            [row] = (await session.scalars(select(SlackInstallation))).all()
        assert (row.team_id, row.bot_user_id, row.installer_user_id) == (
            "T1",
            "UBOTT1",
            "UINSTALLER",
        )
        token = h.teams["T1"].bot_token
        # Commands now work with the installed token.
        sent = await h.command("/models", "", team="T1")
        assert "Models allowed here" in h.reply_text(sent)
        # Authorizing a request never called auth.test (only the install did, once).
        assert len(h.slack.calls_to("auth.test")) == 1
    raw = db_file.read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("slack.db-*") if p.is_file()
    )
    assert token.encode() not in raw


async def test_install_rejects_a_forged_state(tmp_path: Path) -> None:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", teams=("T1",)) as single:
        async with single.http.get(single.url + "/slack/install") as resp:
            assert resp.status == 404  # single-workspace mode has no install page
    async with slack_harness(
        f"sqlite:///{tmp_path / 'oauth.db'}", teams=("T1", "T2"), oauth=True
    ) as h:
        code = h.slack.oauth_code(h.teams["T2"])
        async with h.http.get(
            h.url + "/slack/oauth_redirect", params={"code": code, "state": "forged"}
        ) as resp:
            assert resp.status in (400, 401)


async def test_unknown_workspace_is_refused(tmp_path: Path) -> None:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", teams=("T1",), oauth=True) as h:
        h.slack.add_team("T3")
        sent = await h.command("/models", "", team="T3")
        assert sent.status == 200
        assert "not installed in this workspace" in h.reply_text(sent)
        assert h.slack.calls_to("users.info") == []


async def test_uninstall_forgets_the_workspace(tmp_path: Path) -> None:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", teams=("T1",), oauth=True) as h:
        await h.event({"type": "app_uninstalled"}, team="T1", event_id="EvU")
        async with h.runtime.db.session() as session:
            assert (await session.scalars(select(SlackInstallation))).all() == []
        sent = await h.command("/models", "", team="T1")
        assert "not installed in this workspace" in h.reply_text(sent)
        # Installing again works.
        await install(h, h.teams["T1"])
        sent = await h.command("/models", "", team="T1")
        assert "Models allowed here" in h.reply_text(sent)


async def test_two_workspaces_in_parallel_never_cross(tmp_path: Path) -> None:
    async with slack_harness(
        f"sqlite:///{tmp_path / 'slack.db'}",
        teams=("T1", "T2"),
        oauth=True,
        keys=(KEY_1, KEY_2),
    ) as h:
        await h.set_key("T1", KEY_1)
        await h.set_key("T2", KEY_2)
        h.openrouter.words_delay = 0.005
        sends = [
            h.command(
                "/chat",
                f"question {team} {i}",
                team=team,
                channel=f"C{team}",
                user="U1",
                settle=False,
            )
            for i in range(6)
            for team in ("T1", "T2")
        ]
        sent = await asyncio.gather(*sends)
        assert {s.status for s in sent} == {200}
        await h.settle()

        requests = h.openrouter.chat_requests
        assert len(requests) == 12
        for request in requests:
            prompt = request.json["messages"][-1]["content"]
            expected = KEY_1 if " T1 " in prompt else KEY_2
            assert request.headers["Authorization"] == f"Bearer {expected}"
        for team in ("T1", "T2"):
            token = h.teams[team].bot_token
            messages = h.slack.posted(f"C{team}")
            assert len(messages) == 6
            for message in messages:
                assert message.token == token
                assert f"question {team} " in message.text
            for call in h.slack.calls:
                if call.args.get("channel") == f"C{team}":
                    assert call.token == token
        rows = await h.usage_rows()
        assert len(rows) == 12
        pairs = {(r.workspace_id, r.channel_id) for r in rows}
        assert len(pairs) == 2
        assert len({workspace for workspace, _ in pairs}) == 2
