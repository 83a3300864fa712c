"""Charts into Slack: PNGs uploaded with the external upload flow, shown where the reply is.

The flow (``files.upload`` is retired): ``files.getUploadURLExternal`` (name, length) gives an
upload URL and a file id; the bytes are POSTed there; ``files.completeUploadExternal`` finishes
the file, shared into a channel (and thread) or, without one, private to the app. A private
file can still be shown in Block Kit: an ``image`` block with ``slack_file: {"id": …}``.

Where a chart goes:

* a public ``/costs`` reply in a channel: shared into that channel, beside the reply; where the
  bot is not a member (``/costs`` works there through ``response_url``), the same file is
  finished privately and shown in an ``image`` block of a ``response_url`` message instead;
* a private reply (``/costs workspace``): always the ``image`` block of an ephemeral
  ``response_url`` message, so the chart is seen only by whoever asked;
* a thread (a command sent as a message to routerbot): shared into that thread;
* the Home tab: a private file, cached per workspace and chart so reopening the tab does not
  upload again (:class:`ChartFiles`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.core.charts import SpendChart, draw_png
from bot.slack_app.errors import error_code

log = logging.getLogger(__name__)

#: ``completeUploadExternal`` errors that mean "not in this channel", not "upload broken".
CHANNEL_REFUSED = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}
)
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=30)
_SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


async def upload_png(
    client: AsyncWebClient,
    session: aiohttp.ClientSession,
    png: bytes,
    *,
    filename: str,
    title: str,
    alt_text: str,
    channel_id: str | None = None,
    thread_ts: str | None = None,
) -> str:
    """Upload ``png``; returns the file id. Shared into ``channel_id`` (``thread_ts``) when
    given, else private to the app. Raises ``SlackApiError`` (or a transport error)."""
    started = await client.files_getUploadURLExternal(
        filename=filename, length=len(png), alt_txt=alt_text[:1000]
    )
    file_id, upload_url = str(started["file_id"]), str(started["upload_url"])
    headers = {"Content-Type": "application/octet-stream"}
    async with session.post(
        upload_url, data=png, headers=headers, timeout=UPLOAD_TIMEOUT
    ) as response:
        if response.status != 200:
            raise aiohttp.ClientResponseError(
                response.request_info, (), status=response.status, message="upload refused"
            )
    files: list[dict[str, str | None]] = [{"id": file_id, "title": title}]
    try:
        await client.files_completeUploadExternal(
            files=files, channel_id=channel_id, thread_ts=thread_ts
        )
    except SlackApiError as exc:
        if channel_id is None or error_code(exc) not in CHANNEL_REFUSED:
            raise
        # Not allowed in that channel: keep the file, private, for an image block.
        await client.files_completeUploadExternal(files=files)
        raise ChannelRefused(file_id, error_code(exc)) from None
    return file_id


class ChannelRefused(Exception):
    """The file was finished privately because the channel refused it."""

    def __init__(self, file_id: str, error: str) -> None:
        super().__init__(error)
        self.file_id = file_id


def image_block(file_id: str, chart: SpendChart) -> dict[str, Any]:
    return {
        "type": "image",
        "slack_file": {"id": file_id},
        "alt_text": chart.alt_text[:2000],
        "title": {"type": "plain_text", "text": chart.title[:2000]},
    }


async def chart_for_command(
    client: AsyncWebClient,
    session: aiohttp.ClientSession,
    chart: SpendChart,
    *,
    channel_id: str,
    response_url: str,
    private: bool,
) -> None:
    """Show a slash command's chart beside its reply (see the module docstring); a failure is
    logged, the text reply already stands."""
    try:
        png = await draw_png(chart)
        try:
            file_id = await upload_png(
                client,
                session,
                png,
                filename=chart.filename,
                title=chart.title,
                alt_text=chart.alt_text,
                channel_id=None if private else channel_id,
            )
            if not private:
                return
        except ChannelRefused as refused:
            file_id = refused.file_id
        webhook = AsyncWebhookClient(response_url, session=session, timeout=10)
        response = await webhook.send(
            text=chart.alt_text,
            blocks=[image_block(file_id, chart)],
            response_type="ephemeral" if private else "in_channel",
            replace_original=False,
        )
        if response.status_code != 200:
            log.warning("the chart's response_url post failed: %s", response.status_code)
    except (*_SLACK_ERRORS, OSError) as exc:
        log.warning("could not show the spend chart: %s", error_code(exc))


async def chart_in_thread(
    client: AsyncWebClient,
    session: aiohttp.ClientSession,
    chart: SpendChart,
    *,
    channel_id: str,
    thread_ts: str,
) -> None:
    """Share a chart into a thread (a command answered in a DM thread)."""
    try:
        png = await draw_png(chart)
        await upload_png(
            client,
            session,
            png,
            filename=chart.filename,
            title=chart.title,
            alt_text=chart.alt_text,
            channel_id=channel_id,
            thread_ts=thread_ts,
        )
    except (*_SLACK_ERRORS, ChannelRefused, OSError) as exc:
        log.warning("could not share the spend chart: %s", error_code(exc))


class ChartFiles:
    """Private chart files for the Home tab, one per (workspace, chart) while it is current:
    opening the tab again uploads nothing until the chart changes."""

    def __init__(self, session: aiohttp.ClientSession, capacity: int = 512) -> None:
        self.session = session
        self.capacity = capacity
        self._files: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def file_for(self, client: AsyncWebClient, team_id: str, chart: SpendChart) -> str:
        """The file id showing ``chart`` (uploaded now if needed). Raises on Slack errors."""
        key = (team_id, _digest(chart))
        cached = self._files.get(key)
        if cached is not None:
            self._files.move_to_end(key)
            return cached
        png = await draw_png(chart)
        file_id = await upload_png(
            client,
            self.session,
            png,
            filename=chart.filename,
            title=chart.title,
            alt_text=chart.alt_text,
        )
        self._files[key] = file_id
        if len(self._files) > self.capacity:
            self._files.popitem(last=False)
        return file_id

    def forget(self, team_id: str, chart: SpendChart) -> None:
        self._files.pop((team_id, _digest(chart)), None)


def _digest(chart: SpendChart) -> str:
    text = repr((chart.title, chart.period, chart.currency, chart.days))
    return hashlib.sha256(text.encode()).hexdigest()
