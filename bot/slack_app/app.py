"""The Slack front-end: a bolt ``AsyncApp`` over the core, and its aiohttp routes.

Modes, from the settings: single workspace (``SLACK_BOT_TOKEN``) or OAuth install
(``SLACK_CLIENT_ID``/``SLACK_CLIENT_SECRET``, installations in our database); HTTP events
(``SLACK_SIGNING_SECRET``) or Socket Mode (``SLACK_APP_TOKEN``). One pooled aiohttp session
serves every Web API call; the client honours ``Retry-After`` on 429s.

Acks: a signed slash command or event is answered ``200`` by the route itself, then bolt
dispatches it in a background task admitted one per loop turn, so a burst of requests gets its
acks out before the work competes with them. Interactions (the key form) go through bolt
synchronously, as their ack may carry inline errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.core import claims
from bot.core.dashboard import KeyStatusCache
from bot.core.errors import ConfigurationError
from bot.core.inflight import AnswerJournal
from bot.core.lifecycle import SHUTDOWN_GRACE_SECONDS, AnswerTasks
from bot.runtime import Runtime
from bot.slack_app.admin import AdminCache
from bot.slack_app.assistant import Assistant
from bot.slack_app.chat import SlackStreaming, finish_interrupted
from bot.slack_app.errors import error_code
from bot.slack_app.files import ChartFiles
from bot.slack_app.handlers import Handlers
from bot.slack_app.home_tab import HomeTab
from bot.slack_app.listeners import register_ai_surface, register_listeners
from bot.slack_app.oauth import (
    DatabaseInstallationStore,
    DatabaseStateStore,
    InstallationAuthorize,
    StaticAuthorize,
)
from bot.slack_app.stops import StopSignals

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
#: Must match ``manifest.yaml``.
BOT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "groups:history",
    "im:history",
    "users:read",
)
NOT_INSTALLED = (
    "routerbot is not installed in this workspace any more; a workspace admin can install it again."
)


@dataclass(frozen=True, slots=True)
class SlackMode:
    oauth: bool
    socket: bool

    @property
    def label(self) -> str:
        return ("OAuth" if self.oauth else "single workspace") + (
            ", Socket Mode" if self.socket else ", HTTP"
        )


def slack_mode(settings: Settings) -> SlackMode:
    """Which mode the settings ask for; a ConfigurationError names what is missing."""
    oauth = bool(settings.slack_client_id and settings.slack_client_secret)
    socket = settings.slack_app_token is not None
    if not oauth and settings.slack_bot_token is None:
        raise ConfigurationError(
            "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (one "
            "workspace), or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET "
            "(installable in many workspaces); add SLACK_APP_TOKEN for Socket Mode."
        )
    if settings.slack_signing_secret is None and (oauth or not socket):
        raise ConfigurationError(
            "SLACK_SIGNING_SECRET is not set; copy it from the Slack app's Basic Information "
            "page (it verifies that requests come from Slack)."
        )
    return SlackMode(oauth=oauth, socket=socket)


def slack_configured(settings: Settings) -> bool:
    try:
        slack_mode(settings)
    except ConfigurationError:
        return False
    return True


def _sdk_logger() -> logging.Logger:
    # slack_sdk formats a debug line per request whenever its logger's own level is NOTSET,
    # message text included; hold it at INFO or above unless it is configured explicitly.
    logger = logging.getLogger("slack_sdk.web.routerbot")
    if logger.level == logging.NOTSET:
        logger.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.INFO))
    return logger


def web_client(settings: Settings, session: aiohttp.ClientSession) -> AsyncWebClient:
    return AsyncWebClient(
        logger=_sdk_logger(),
        base_url=settings.slack_api_url,
        session=session,
        timeout=30,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class SlackFrontend:
    """Owns the bolt app, its HTTP session and the background work it starts."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        app: AsyncApp,
        mode: SlackMode,
        session: aiohttp.ClientSession,
        tasks: AnswerTasks,
    ) -> None:
        self.runtime = runtime
        self.app = app
        self.mode = mode
        self.session = session
        self.tasks = tasks
        self._pruner: asyncio.Task[None] | None = None
        self.journal = AnswerJournal(
            runtime.store,
            platform="slack",
            finish=self._finish_interrupted,
            interval=runtime.settings.routerbot_answer_heartbeat_seconds,
            stale=runtime.settings.routerbot_answer_stale_seconds,
        )
        secret = runtime.settings.slack_signing_secret
        self._verifier = SignatureVerifier(secret.get_secret_value()) if secret else None

    @classmethod
    async def create(cls, runtime: Runtime) -> SlackFrontend:
        settings = runtime.settings
        mode = slack_mode(settings)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        try:
            app = await _bolt_app(runtime, settings, mode, web_client(settings, session))
        except BaseException:
            await session.close()
            raise
        tasks = AnswerTasks("Slack")
        handlers = Handlers(
            runtime,
            session=session,
            admin_cache=AdminCache(),
            streaming=SlackStreaming(mode=settings.slack_streaming),
        )
        assistant = Assistant(
            handlers, session=session, stops=StopSignals(runtime.store), tasks=tasks
        )
        home = HomeTab(handlers, charts=ChartFiles(session), keys=KeyStatusCache())
        register_listeners(app, handlers, tasks, oauth=mode.oauth, assistant=assistant)
        register_ai_surface(app, assistant, home, tasks)
        frontend = cls(runtime, app=app, mode=mode, session=session, tasks=tasks)
        handlers.journal = frontend.journal
        return frontend

    def web_app(self) -> web.Application:
        webapp = web.Application()
        webapp.router.add_get(HEALTH_PATH, self._health)
        if not self.mode.socket:
            webapp.router.add_post(EVENTS_PATH, self._events)
        flow = self.app.oauth_flow
        if flow is not None:
            webapp.router.add_get(flow.install_path, self._install)
            webapp.router.add_get(flow.redirect_uri_path, self._oauth_redirect)
        return webapp

    def start(self) -> None:
        self._pruner = asyncio.create_task(self._prune_forever(), name="slack-prune-events")
        self.journal.start()

    async def drain(self) -> None:
        """Wait for all work started by requests so far (and by that work) to finish."""
        await self.tasks.drain()

    async def aclose(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self.tasks.shutdown(grace)
        # Answers cancelled just now stay in the journal, for a live process to finish.
        await self.journal.aclose()
        await self.session.close()

    # -- routes ------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.Response:
        # The signature is checked on the raw bytes before anything parses them: a forged or
        # malformed request (a non-numeric timestamp, a body that is not JSON) gets a plain
        # 401, never a parser's exception.
        # Slack signs UTF-8; any other byte (replaced here) fails the check below, where a
        # strict decode would have failed with a 500 before it.
        raw = (await request.read()).decode("utf-8", "replace")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if self._verifier is not None and not (
            timestamp.isdigit()
            and signature.isascii()  # compare_digest raises on non-ASCII text
            and signature
            and self._verifier.is_valid(body=raw, timestamp=timestamp, signature=signature)
        ):
            return web.Response(status=401)
        try:
            # What bolt's to_bolt_request builds, from the body already read and decoded;
            # bolt types headers as a dict and reads aiohttp's multidict the same way.
            headers: Any = request.headers
            bolt_request = AsyncBoltRequest(body=raw, query=request.query_string, headers=headers)
        except ValueError:  # a correctly signed body that still is not Slack's format
            return web.Response(status=400)
        if self._ack_early(bolt_request):
            # Commands and events always ack with an empty 200, so send it before bolt even
            # routes the request: under load the ack never queues behind listener work.
            self.tasks.admit(self._dispatch_acked(bolt_request), name="slack dispatch")
            return web.Response(status=200)
        response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    def _ack_early(self, request: AsyncBoltRequest) -> bool:
        body = request.body
        if not (body.get("type") == "event_callback" or "command" in body):
            return False  # interactions may answer in the ack; url_verification must echo
        timestamp = request.headers.get("x-slack-request-timestamp", [""])[0]
        signature = request.headers.get("x-slack-signature", [""])[0]
        if self._verifier is None or not timestamp.isdigit() or not signature:
            return False  # bolt answers these with a 401
        return self._verifier.is_valid(
            body=request.raw_body, timestamp=timestamp, signature=signature
        )

    async def _dispatch_acked(self, request: AsyncBoltRequest) -> None:
        response = await self.app.async_dispatch(request)
        if response.status >= 400:
            log.warning("Slack request acked early was refused by bolt: %s", response.status)

    async def _install(self, request: web.Request) -> web.Response:
        assert self.app.oauth_flow is not None
        response = await self.app.oauth_flow.handle_installation(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def _oauth_redirect(self, request: web.Request) -> web.Response:
        assert self.app.oauth_flow is not None
        response = await self.app.oauth_flow.handle_callback(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def _health(self, _request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(2):
                await self.runtime.store.ping()
        except Exception:
            return web.json_response({"status": "unavailable", "database": "down"}, status=503)
        return web.json_response(
            {"status": "ok", "mode": self.mode.label, "in_flight": len(self.tasks)}
        )

    async def _finish_interrupted(self, target: dict[str, Any]) -> None:
        """An answer another process was streaming when it died: say it was cut short."""
        token = await self._bot_token(str(target.get("team") or ""))
        if token is None:
            log.warning("no bot token for an interrupted answer's workspace; left as it is")
            return
        await finish_interrupted(self.app.client, token, target)

    async def _bot_token(self, team_id: str) -> str | None:
        if not self.mode.oauth:
            token = self.runtime.settings.slack_bot_token
            return token.get_secret_value() if token is not None else None
        store = self.app.installation_store
        if store is None:
            return None
        bot = await store.async_find_bot(enterprise_id=None, team_id=team_id)
        return bot.bot_token if bot is not None else None

    async def _prune_forever(self) -> None:
        while True:
            try:
                await claims.prune(self.runtime.store)
            except Exception:
                log.exception("pruning processed Slack events failed")
            await asyncio.sleep(claims.PRUNE_EVERY_SECONDS)


async def _bolt_app(
    runtime: Runtime, settings: Settings, mode: SlackMode, client: AsyncWebClient
) -> AsyncApp:
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    common = {
        "name": "routerbot",
        "client": client,
        "signing_secret": signing_secret,
        # Listeners only ack and spawn, so respond as soon as they return (no ack polling).
        "process_before_response": True,
        "request_verification_enabled": not mode.socket,
        "user_facing_authorize_error_message": NOT_INSTALLED,
    }
    if mode.oauth:
        assert settings.slack_client_id
        assert settings.slack_client_secret
        store = DatabaseInstallationStore(runtime.store, runtime.vault, settings.slack_client_id)
        oauth_settings = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.get_secret_value(),
            scopes=list(BOT_SCOPES),
            installation_store=store,
            installation_store_bot_only=True,
            state_store=DatabaseStateStore(runtime.store),
        )
        return AsyncApp(
            **common,  # type: ignore[arg-type]
            installation_store=store,
            authorize=InstallationAuthorize(store),  # type: ignore[arg-type]
            oauth_settings=oauth_settings,
        )
    assert settings.slack_bot_token is not None
    token = settings.slack_bot_token.get_secret_value()
    try:
        identity = await client.auth_test(token=token)
    except SlackApiError as exc:
        raise ConfigurationError(
            f"Slack rejected SLACK_BOT_TOKEN ({error_code(exc)}); copy the Bot User "
            "OAuth Token (xoxb-…) from the app's OAuth & Permissions page."
        ) from None
    except aiohttp.ClientError as exc:
        raise ConfigurationError(
            f"Could not reach the Slack API at {settings.slack_api_url} ({exc})."
        ) from None
    return AsyncApp(
        **common,  # type: ignore[arg-type]
        authorize=StaticAuthorize(token=token, auth_test=dict(identity.data)),  # type: ignore[arg-type]
    )
