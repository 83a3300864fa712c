"""The Home tab: published for each person whenever they open it (``app_home_opened``).

The dashboard is read fresh from the core (:func:`bot.core.dashboard.build_dashboard`); an
admin's chart is uploaded privately and shown by file id, once per workspace and chart
(:class:`bot.slack_app.files.ChartFiles`). Slack may refuse a file it is still processing
(``invalid_blocks``): the view is then published without the chart, which the next opening
shows. The admins' "Set the API key" button opens the same key form as ``/apikey``.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.dashboard import KeyStatusCache, build_dashboard
from bot.core.dispatch import failure_sentence
from bot.slack_app.admin import AdminCheckFailed
from bot.slack_app.errors import error_code
from bot.slack_app.files import ChartFiles
from bot.slack_app.handlers import Handlers
from bot.slack_app.home import home_view
from bot.slack_app.modal import ModalOrigin, key_modal

log = logging.getLogger(__name__)

_SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


class HomeTab:
    def __init__(
        self, handlers: Handlers, *, charts: ChartFiles, keys: KeyStatusCache | None = None
    ) -> None:
        self.handlers = handlers
        self.charts = charts
        self.keys = keys or KeyStatusCache()

    async def opened(self, event: dict[str, Any], *, team_id: str, client: AsyncWebClient) -> None:
        user = str(event.get("user") or "")
        channel = str(event.get("channel") or "")  # the person's DM with routerbot
        if not user:
            return
        try:
            admin = await self.handlers.is_admin(client, team_id, user)
        except AdminCheckFailed:
            admin = False  # shown a member's view now, an admin's once Slack answers
        ctx = self.handlers.invocation(team_id, channel, user, is_admin=admin, name=None)
        try:
            dash = await build_dashboard(self.handlers.runtime.service, ctx, self.keys)
        except Exception as exc:
            log.exception("could not build the Home tab")
            await self._publish(client, user, _sorry(failure_sentence(exc)))
            return
        chart = dash.admin.chart if dash.admin is not None else None
        file_id = None
        if chart is not None:
            try:
                file_id = await self.charts.file_for(client, team_id, chart)
            except (*_SLACK_ERRORS, OSError) as exc:
                log.warning("could not upload the Home tab's chart: %s", error_code(exc))
        view = home_view(dash, chart_file_id=file_id, key_origin=channel)
        if await self._publish(client, user, view) == "invalid_blocks" and chart is not None:
            self.charts.forget(team_id, chart)
            await self._publish(client, user, home_view(dash, key_origin=channel))

    async def _publish(self, client: AsyncWebClient, user: str, view: dict[str, Any]) -> str:
        """Publish; returns the Slack error code, or "" when it was shown."""
        try:
            await client.views_publish(user_id=user, view=view)
        except _SLACK_ERRORS as exc:
            log.warning("views.publish failed: %s", error_code(exc))
            return error_code(exc)
        return ""

    async def key_button(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        """ "Set the API key": the key form, confirmed afterwards in the person's DM."""
        actions = body.get("actions") or [{}]
        origin = ModalOrigin(str(actions[0].get("value") or ""), None, None)
        try:
            await client.views_open(trigger_id=str(body.get("trigger_id")), view=key_modal(origin))
        except _SLACK_ERRORS as exc:
            log.warning("views.open from the Home tab failed: %s", error_code(exc))


def _sorry(sentence: str) -> dict[str, Any]:
    text = {"type": "mrkdwn", "text": sentence}
    return {"type": "home", "blocks": [{"type": "section", "text": text}]}
