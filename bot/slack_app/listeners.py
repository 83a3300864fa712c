"""Bolt listeners: each one only reads the payload and hands the work to a background task.

Commands, thread follow-ups and mentions go to :class:`~bot.slack_app.handlers.Handlers`;
direct messages, the Messages and Home tabs and Slack's Stop to the AI app
(:mod:`bot.slack_app.assistant`, :mod:`bot.slack_app.home_tab`).

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

from bot.core.lifecycle import AnswerTasks
from bot.slack_app.assistant import Assistant
from bot.slack_app.handlers import Handlers
from bot.slack_app.home import KEY_ACTION
from bot.slack_app.home_tab import HomeTab
from bot.slack_app.modal import BLOCK_ID, CALLBACK_ID, ModalOrigin, key_problem, submitted_key
from bot.slack_app.payloads import SlashCommand, is_human_message, with_clean_text


def _team(body: dict[str, Any], context: AsyncBoltContext) -> str:
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    return str(team or context.team_id or context.enterprise_id or "")


def register_listeners(
    app: AsyncApp,
    handlers: Handlers,
    tasks: AnswerTasks,
    *,
    oauth: bool,
    assistant: Assistant | None = None,
) -> None:
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
        if assistant is not None and event.get("channel_type") == "im":
            # A direct message to routerbot (its Messages tab): always a chat or a command.
            tasks.spawn(
                assistant.message(
                    event,
                    team_id=_team(body, context),
                    client=context.client,
                    bot_user_id=context.bot_user_id or "",
                ),
                name="slack direct message",
            )
            return
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


def register_ai_surface(
    app: AsyncApp, assistant: Assistant, home: HomeTab, tasks: AnswerTasks
) -> None:
    """The AI app's events (prompts, Stop) and the Home tab; messages come through
    ``on_message`` above."""

    @app.event("app_home_opened")
    async def on_home_opened(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("tab") == "messages":
            tasks.spawn(assistant.messages_tab_opened(event, context.client), name="slack prompts")
        elif event.get("tab") == "home":
            team = _team(body, context)
            tasks.spawn(home.opened(event, team_id=team, client=context.client), name="slack home")

    @app.event("assistant_thread_started")
    async def on_thread_started(event: dict[str, Any], context: AsyncBoltContext) -> None:
        tasks.spawn(assistant.thread_started(event, context.client), name="slack prompts")

    @app.event("assistant_thread_context_changed")
    async def on_context_changed() -> None:
        """The channel a user looks at does not change what routerbot answers."""

    @app.event("agent_session_stopped")
    async def on_stopped(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        tasks.spawn(assistant.stopped(event, team_id=_team(body, context)), name="slack stop")

    @app.action(KEY_ACTION)
    async def on_key_button(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        tasks.spawn(home.key_button(body, context.client), name="slack key button")
