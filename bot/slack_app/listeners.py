"""Bolt listeners: each one only reads the payload and hands the work to a background task.

Commands and events are acked by the HTTP route before bolt routes them
(:meth:`bot.slack_app.app.SlackFrontend._events`), so their ``ack()`` here is a formality kept
for Socket Mode, where bolt sends the ack. The app runs with ``process_before_response=True``:
the key form's ack (which may carry inline errors) goes out as soon as its listener returns.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack_app.handlers import Handlers
from bot.slack_app.modal import BLOCK_ID, CALLBACK_ID, ModalOrigin, key_problem, submitted_key
from bot.slack_app.payloads import SlashCommand, is_human_message, with_clean_text
from bot.slack_app.tasks import TaskGroup


def _team(body: dict[str, Any], context: AsyncBoltContext) -> str:
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    return str(team or context.team_id or context.enterprise_id or "")


def register_listeners(app: AsyncApp, handlers: Handlers, tasks: TaskGroup, *, oauth: bool) -> None:
    @app.command(re.compile(r"^/.+$"))
    async def on_command(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        command = SlashCommand.from_body(body)
        tasks.spawn(handlers.command(command, context.client), name=f"slack /{command.word}")

    @app.view(CALLBACK_ID)
    async def on_key_form(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        key = submitted_key(view)
        problem = key_problem(key)
        if problem is not None:
            await ack(response_action="errors", errors={BLOCK_ID: problem})
            return
        await ack()
        tasks.spawn(
            handlers.key_submitted(
                team_id=_team(body, context),
                user_id=str((body.get("user") or {}).get("id", "")),
                key=SecretStr(key),
                origin=ModalOrigin.load(view.get("private_metadata")),
                client=context.client,
            ),
            name="slack key form",
        )

    @app.event("message")
    async def on_message(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        thread_ts = event.get("thread_ts")
        # Most channel traffic is not for us: only human replies in threads can be follow-ups.
        if not thread_ts or thread_ts == event.get("ts"):
            return
        if not is_human_message(event, context.bot_user_id):
            return
        tasks.spawn(
            handlers.message(
                with_clean_text(event),
                team_id=_team(body, context),
                client=context.client,
                bot_user_id=context.bot_user_id or "",
            ),
            name="slack message",
        )

    @app.event("app_mention")
    async def on_mention(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if not is_human_message(event, context.bot_user_id):
            return
        tasks.spawn(
            handlers.mention(
                with_clean_text(event),
                team_id=_team(body, context),
                client=context.client,
                bot_user_id=context.bot_user_id or "",
            ),
            name="slack mention",
        )

    if oauth:
        app.enable_token_revocation_listeners()
    else:

        @app.event(re.compile(r"^(app_uninstalled|tokens_revoked)$"))
        async def on_uninstalled() -> None:
            """Nothing is stored per installation in single-workspace mode."""
