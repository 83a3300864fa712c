"""A small, honest fake of OpenRouter served over real HTTP on loopback (aiohttp.web).

It speaks the shapes in ``reference/openrouter-openapi.yaml``: ``POST /chat/completions``
(SSE: a ``: OPENROUTER PROCESSING`` comment, a role chunk, one chunk per word, the
``finish_reason`` chunk, then the usage chunk with ``choices: []`` and ``usage.cost``, then
``data: [DONE]``; or one JSON result when ``stream`` is false), ``GET /key``,
``GET /model/{author}/{slug}``, ``GET /models/{author}/{slug}/endpoints``, ``GET /models`` and
``GET /generation?id=`` for the completions it served. Every call is recorded in ``requests``.

``generations`` is the provider's record: every completion that began streaming, with what it
billed. Like OpenRouter it bills what was generated (prompt and the words sent) unless the
stream ended with an error (``finish_reason: "error"``) or no word was sent (zero-completion
insurance); a stream the client closed early (cancelled, timed out, killed) is billed for the
words sent so far, as most providers do (``bill_cancelled = False``: as those that stop).

Default answer: ``"echo: <last user message>"``, one SSE chunk per word. A request's
``max_completion_tokens`` (or ``max_tokens``) is honoured as OpenRouter's models do: the answer
stops after that many completion tokens (one a word here, reasoning tokens first) with
``finish_reason: "length"``, and the usage reports what was produced. Faults and answers are
scripted per request with :meth:`FakeOpenRouter.script`; scripts are consumed in order, the
first whose ``model`` matches (``None`` matches any model) wins::

    async with FakeOpenRouter() as fake:                     # key: DEFAULT_KEY
        adapter = OpenRouterAdapter(fake.base_url)
        fake.script(Fault.http(429, retry_after="2"))        # next chat: 429 before the stream
        fake.script(Fault.error_chunk(after=3, code=502))    # then: 3 words, an error chunk
        fake.script(Fault.drop(after=1), model="openai/gpt-4o-mini", times=None)  # every time
        fake.script(answer="Hi there", served_model="openai/gpt-4o-mini-2024-07-18")
        fake.words_delay = 0.01                              # seconds between chunks
        ...
        assert fake.chat_requests[-1].json["stream"] is True

Fault kinds (see :class:`Fault`'s constructors): ``http`` (an error status before the stream,
optional ``Retry-After`` and ``error.metadata``), ``error_chunk`` (HTTP 200, a top-level ``error`` chunk with
``finish_reason: "error"`` after N words), ``malformed`` (a broken JSON ``data:`` line after N
words), ``drop`` (the TCP connection is closed abruptly after N words), ``hang`` (silence after N
words until the client gives up or the fake stops), ``keepalive`` (after N words only
``: OPENROUTER PROCESSING`` comments, which keep a read timeout from firing), ``no_usage`` (no
usage chunk),
``no_cost`` (usage without ``cost``).

Richer requests (content parts, plugins, the web search tool, reasoning) are checked and
answered by ``tests/fakes/openrouter_richer.py``: scripts may set ``web_searches`` and
``citations`` for a web-search answer.

Run standalone for benchmarks; the first stdout line is the base URL::

    python -m tests.fakes.openrouter --port 0 --words 30 --delay 0.02 --key sk-or-v1-test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import secrets
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes import openrouter_richer as richer
from tests.fakes.openrouter_catalogue import PROVIDER_NAME, FakeCatalogue, FakeModel

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_MODELS",
    "FakeModel",
    "FakeOpenRouter",
    "Fault",
    "RecordedRequest",
    "Script",
]

DEFAULT_KEY = "sk-or-v1-test"
API_PREFIX = "/api/v1"
_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")

FaultKind = Literal[
    "http", "error_chunk", "malformed", "drop", "hang", "keepalive", "no_usage", "no_cost"
]
_MID_STREAM = ("error_chunk", "malformed", "drop", "hang", "keepalive")


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour. Build it with the class methods."""

    kind: FaultKind
    #: Answer chunks (words) sent before a mid-stream fault happens.
    after: int = 0
    #: ``http``: the HTTP status. ``error_chunk``: the default ``error.code``.
    status: int = 500
    #: Overrides ``error.code`` in the body (OpenRouter sends ints; strings happen too).
    code: int | str | None = None
    message: str | None = None
    #: ``http``: the ``Retry-After`` header value, verbatim (seconds or an HTTP date).
    retry_after: str | None = None
    #: ``http``: ``error.metadata`` (e.g. ``{"limit_source": "openrouter_key_limit"}``).
    metadata: Mapping[str, Any] | None = None
    #: ``hang``: how long to stay silent (the fake's ``stop()`` ends it early); ``keepalive``:
    #: how long to send nothing but comments.
    seconds: float = 3600.0
    #: ``keepalive``: seconds between the ``: OPENROUTER PROCESSING`` comments.
    every: float = 0.05

    @classmethod
    def http(
        cls,
        status: int,
        *,
        message: str | None = None,
        code: int | str | None = None,
        retry_after: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Fault:
        return cls(
            "http",
            status=status,
            message=message,
            code=code,
            retry_after=retry_after,
            metadata=metadata,
        )

    @classmethod
    def error_chunk(
        cls, *, after: int = 1, code: int | str = 502, message: str = "Provider returned error"
    ) -> Fault:
        status = code if isinstance(code, int) else 502
        return cls("error_chunk", after=after, status=status, code=code, message=message)

    @classmethod
    def malformed(cls, *, after: int = 1) -> Fault:
        return cls("malformed", after=after)

    @classmethod
    def drop(cls, *, after: int = 1) -> Fault:
        return cls("drop", after=after)

    @classmethod
    def hang(cls, *, after: int = 1, seconds: float = 3600.0) -> Fault:
        return cls("hang", after=after, seconds=seconds)

    @classmethod
    def keepalive(cls, *, after: int = 1, seconds: float = 3600.0, every: float = 0.05) -> Fault:
        """After ``after`` words, only keep-alive comments for ``seconds`` (then the rest)."""
        return cls("keepalive", after=after, seconds=seconds, every=every)

    @classmethod
    def no_usage(cls) -> Fault:
        return cls("no_usage")

    @classmethod
    def no_cost(cls) -> Fault:
        return cls("no_cost")


@dataclass(slots=True)
class Script:
    """How to answer matching chat requests. ``times=None`` repeats until removed."""

    fault: Fault | None = None
    model: str | None = None
    answer: str | None = None
    served_model: str | None = None
    times: int | None = 1
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    #: With the web search tool: how many searches the model runs (default 1), and the pages
    #: it cites as ``(url, title)``.
    web_searches: int | None = None
    citations: list[tuple[str, str]] | None = None


DEFAULT_MODELS: tuple[FakeModel, ...] = (
    FakeModel(
        id="openai/gpt-4o-mini",
        name="OpenAI: GPT-4o-mini",
        prompt="0.00000015",
        completion="0.0000006",
        input_cache_read="0.000000075",
    ),
    FakeModel(
        id="anthropic/claude-3.5-sonnet",
        name="Anthropic: Claude 3.5 Sonnet",
        prompt="0.000003",
        completion="0.000015",
        input_cache_read="0.0000003",
        context_length=200_000,
    ),
    FakeModel(
        id="meta-llama/llama-3.1-8b-instruct:free",
        name="Meta: Llama 3.1 8B Instruct (free)",
        prompt="0",
        completion="0",
        context_length=131_072,
    ),
)

#: Pricing for models outside the catalogue (when ``strict_models`` is off).
FALLBACK_PRICING = FakeModel("*", "*", "0.000001", "0.000002")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    #: Case-insensitive.
    headers: Mapping[str, str]
    #: The parsed JSON body, or ``None`` when there was none (or it was not JSON).
    json: Any


@dataclass(slots=True)
class _Generation:
    data: dict[str, Any]
    polls_left_before_ready: int


def _dumps(obj: Any) -> str:
    """``json.dumps`` that writes Decimals as exact JSON numbers (the real API's ``cost``)."""
    numbers: dict[str, str] = {}

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            key = f"__decimal_{len(numbers)}__"
            numbers[key] = format(value.normalize(), "f")
            return key
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    text = json.dumps(convert(obj), separators=(",", ":"))
    for key, number in numbers.items():
        text = text.replace(f'"{key}"', number)
    return text


def _error_body(code: int | str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=_dumps(payload), content_type="application/json", headers=headers
    )


def _words(text: str) -> list[str]:
    """Split keeping the whitespace, so the pieces join back to ``text`` exactly."""
    return re.findall(r"\s*\S+", text)


def _text_of(content: object) -> str:
    """A message's text: the string, or its ``text`` parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if isinstance(t, str) and t)
    return ""


def _mask(key: str) -> str:
    return f"{key[:12]}...{key[-3:]}" if len(key) > 15 else "sk-...?"


class FakeOpenRouter:
    """The fake server. See the module docstring for the scripting API."""

    def __init__(
        self,
        *,
        valid_keys: Iterable[str] = (DEFAULT_KEY,),
        models: Iterable[FakeModel] = DEFAULT_MODELS,
        words_delay: float = 0.0,
        answer_words: int | None = None,
        strict_models: bool = False,
    ) -> None:
        self.valid_keys: set[str] = set(valid_keys)
        self.catalogue = FakeCatalogue(models)
        #: Per key; missing keys get a default (no limit, usage accumulated from chats).
        self.key_info: dict[str, dict[str, Any]] = {}
        #: Seconds between answer chunks.
        self.words_delay = words_delay
        #: When set, default answers are exactly this many words (benchmarks).
        self.answer_words = answer_words
        #: Unknown model ids get 400 "not a valid model ID", as OpenRouter does.
        self.strict_models = strict_models
        #: Defaults for every completion; a Script may override them.
        self.cached_tokens = 0
        self.reasoning_tokens = 0
        #: How many times ``GET /generation`` 404s for a fresh id before it is served.
        self.generation_delay_polls = 0
        #: Whether a stream the client closed early is billed for the words sent.
        self.bill_cancelled = True
        self.scripts: list[Script] = []
        self.requests: list[RecordedRequest] = []
        self.generations: dict[str, _Generation] = {}
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._ids = itertools.count(1)

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port); returns ``http://host:port/api/v1``."""
        app = web.Application(middlewares=[self._record])
        app.router.add_post(f"{API_PREFIX}/chat/completions", self._chat)
        app.router.add_get(f"{API_PREFIX}/key", self._key)
        self.catalogue.mount(app.router, API_PREFIX)
        app.router.add_get(f"{API_PREFIX}/generation", self._generation)
        # handler_cancellation: a client that hangs up cancels its handler (hangs, slow streams).
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.Server)
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        self._stopping.clear()
        self.base_url = f"http://{bound_host}:{bound_port}{API_PREFIX}"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenRouter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- scripting --------------------------------------------------------------------

    def script(
        self,
        fault: Fault | None = None,
        *,
        model: str | None = None,
        answer: str | None = None,
        served_model: str | None = None,
        times: int | None = 1,
        cached_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        web_searches: int | None = None,
        citations: list[tuple[str, str]] | None = None,
    ) -> Script:
        """Queue how the next matching chat request(s) are answered."""
        entry = Script(
            fault,
            model,
            answer,
            served_model,
            times,
            cached_tokens,
            reasoning_tokens,
            web_searches,
            citations,
        )
        self.scripts.append(entry)
        return entry

    def next_fault(self, fault: Fault, *, model: str | None = None) -> Script:
        """Shorthand: the next matching chat request gets ``fault``."""
        return self.script(fault, model=model)

    def add_model(self, model: FakeModel) -> None:
        self.catalogue.add(model)

    @property
    def models(self) -> dict[str, FakeModel]:
        """The catalogue's served models, by id."""
        return self.catalogue.models

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def answer_for(self, messages: object) -> str:
        """The default answer: ``echo: <last user message>`` (padded when ``answer_words``)."""
        last = ""
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, dict) and message.get("role") == "user":
                    last = _text_of(message.get("content"))
        answer = f"echo: {last}".strip()
        if self.answer_words:
            words = answer.split()
            words += list(itertools.islice(itertools.cycle(_FILLER), self.answer_words))
            answer = " ".join(words[: self.answer_words])
        return answer

    def _take_script(self, model: str) -> Script:
        for index, entry in enumerate(self.scripts):
            if entry.model is None or entry.model == model:
                if entry.times is not None:
                    entry.times -= 1
                    if entry.times <= 0:
                        del self.scripts[index]
                return entry
        return Script()

    # ---- plumbing ---------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        parsed: Any = None
        if body:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDict(request.headers),
                json=parsed,
            )
        )
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPNotFound:
            return _json(404, _error_body(404, "Not Found"))
        except web.HTTPMethodNotAllowed:
            return _json(405, _error_body(405, "Method Not Allowed"))
        return response

    def _key_of(self, request: web.Request) -> str | None:
        """The bearer key when it is valid, else ``None``."""
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        return key if key in self.valid_keys else None

    def _info_for(self, key: str) -> dict[str, Any]:
        return self.key_info.setdefault(
            key,
            {"label": _mask(key), "limit": None, "limit_remaining": None, "usage": Decimal(0)},
        )

    def _pricing_for(self, model_id: str) -> FakeModel:
        return self.catalogue.find(model_id) or FALLBACK_PRICING

    # ---- key, generation ----------------------------------------------------------------

    async def _key(self, request: web.Request) -> web.Response:
        key = self._key_of(request)
        if key is None:
            return _json(401, _error_body(401, "No auth credentials found"))
        info = self._info_for(key)
        data = {
            **info,
            "is_free_tier": False,
            "is_management_key": False,
            "is_provisioning_key": False,
            "limit_reset": None,
            "include_byok_in_limit": False,
            "expires_at": None,
            "usage_daily": info["usage"],
            "usage_weekly": info["usage"],
            "usage_monthly": info["usage"],
            "byok_usage": 0,
            "rate_limit": {"requests": -1, "interval": "10s", "note": "deprecated"},
        }
        return _json(200, {"data": data})

    async def _generation(self, request: web.Request) -> web.Response:
        if self._key_of(request) is None:
            return _json(401, _error_body(401, "No auth credentials found"))
        generation = self.generations.get(request.query.get("id", ""))
        if generation is None:
            return _json(404, _error_body(404, "Generation not found"))
        if generation.polls_left_before_ready > 0:
            generation.polls_left_before_ready -= 1
            return _json(404, _error_body(404, "Generation not found"))
        return _json(200, {"data": generation.data})

    # ---- chat ---------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        key = self._key_of(request)
        if key is None:
            return _json(401, _error_body(401, "No auth credentials found"))
        body = self.requests[-1].json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _json(400, _error_body(400, "Invalid request: messages are required"))
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _json(400, _error_body(400, "No models provided"))
        refusal = self.catalogue.chat_refusal(model)
        if refusal is not None:
            return _json(refusal[0], _error_body(*refusal))
        if self.strict_models and self.catalogue.find(model) is None:
            return _json(400, _error_body(400, f"{model} is not a valid model ID"))
        try:
            received = richer.check(body, self.catalogue.find(model))
        except richer.Invalid as exc:
            return _json(exc.status, _error_body(exc.status, exc.message))

        script = self._take_script(model)
        fault = script.fault
        if fault is not None and fault.kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            message = fault.message or web.Response(status=fault.status).reason or "Error"
            error = _error_body(fault.code or fault.status, message)
            if fault.metadata is not None:
                error["error"]["metadata"] = dict(fault.metadata)
            return _json(fault.status, error, headers)

        answer = script.answer if script.answer is not None else self.answer_for(body["messages"])
        cached = self.cached_tokens if script.cached_tokens is None else script.cached_tokens
        reasoning = (
            self.reasoning_tokens if script.reasoning_tokens is None else script.reasoning_tokens
        )
        if received.effort is not None and script.reasoning_tokens is None and not reasoning:
            reasoning = richer.REASONING_BY_EFFORT.get(received.effort, 0)
        rich = richer.Richness.of(
            received,
            self.catalogue.find(model),
            searches=script.web_searches,
            citations=script.citations,
        )
        pieces, finish_reason = _words(answer), "stop"
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(cap, int) and not isinstance(cap, bool):
            if cap < 1:
                return _json(400, _error_body(400, "max_completion_tokens must be at least 1"))
            # Reasoning comes first and counts against the cap, as on OpenRouter.
            reasoning = min(reasoning, cap)
            if len(pieces) > cap - reasoning:
                pieces, finish_reason = pieces[: cap - reasoning], "length"
        turn = _Turn(
            fake=self,
            key=key,
            model=model,
            served=script.served_model or self.catalogue.served_as(model),
            pieces=pieces,
            messages=body["messages"],
            cached=cached,
            reasoning=reasoning,
            fault=fault,
            rich=rich,
            finish_reason=finish_reason,
        )
        if body.get("stream") is True:
            return await turn.stream(request)
        return await turn.whole(request)

    async def pause(self, seconds: float) -> bool:
        """Sleep unless the fake is stopping; True when the full time passed."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False


@dataclass
class _Turn:
    """One chat completion being served."""

    fake: FakeOpenRouter
    key: str
    model: str
    served: str
    pieces: list[str]
    messages: list[Any]
    cached: int
    reasoning: int
    fault: Fault | None
    rich: richer.Richness = field(default_factory=richer.Richness)
    #: ``length`` when ``max_completion_tokens`` cut the answer short.
    finish_reason: str = "stop"
    gen_id: str = field(default="")
    created: int = field(default_factory=lambda: int(time.time()))
    #: Answer chunks written so far.
    sent: int = 0

    def __post_init__(self) -> None:
        self.gen_id = f"gen-{next(self.fake._ids)}-{secrets.token_hex(6)}"

    # -- accounting

    def prompt_tokens(self) -> int:
        words = sum(
            len(_text_of(m.get("content")).split()) for m in self.messages if isinstance(m, dict)
        )
        return words + 3 * len(self.messages) + self.rich.parts_tokens

    def usage(self, sent: int, *, with_cost: bool = True) -> dict[str, Any]:
        prompt = self.prompt_tokens()
        cached = min(self.cached, prompt)
        completion = sent + self.reasoning
        price = self.fake._pricing_for(self.model)
        cache_price = Decimal(price.input_cache_read or price.prompt)
        cost = (
            (prompt - cached) * Decimal(price.prompt)
            + cached * cache_price
            + completion * Decimal(price.completion)
            + self.rich.search_cost
        )
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if with_cost:
            usage["cost"] = cost
            usage["is_byok"] = False
            usage["cost_details"] = {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": (prompt - cached) * Decimal(price.prompt)
                + cached * cache_price,
                "upstream_inference_completions_cost": completion * Decimal(price.completion),
            }
        usage.update(self.rich.usage_fields())
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning, "image_tokens": 0}
        return usage

    def record(self, sent: int, finish_reason: str, *, charged: bool) -> None:
        usage = self.usage(sent)
        cost: Decimal = usage["cost"] if charged else Decimal(0)
        info = self.fake._info_for(self.key)
        info["usage"] = info["usage"] + cost
        if info.get("limit") is not None:
            info["limit_remaining"] = Decimal(str(info["limit"])) - info["usage"]
        self.fake.generations[self.gen_id] = _Generation(
            data={
                "id": self.gen_id,
                "model": self.served,
                "provider_name": PROVIDER_NAME,
                "total_cost": cost,
                "usage": cost,
                "tokens_prompt": usage["prompt_tokens"],
                "tokens_completion": usage["completion_tokens"],
                "native_tokens_prompt": usage["prompt_tokens"],
                "native_tokens_completion": usage["completion_tokens"],
                "native_tokens_cached": usage["prompt_tokens_details"]["cached_tokens"],
                "native_tokens_reasoning": self.reasoning,
                "finish_reason": finish_reason,
                "native_finish_reason": finish_reason,
                "streamed": True,
                "cancelled": finish_reason == "cancelled",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self.created)),
                "is_byok": False,
            },
            polls_left_before_ready=self.fake.generation_delay_polls,
        )

    # -- streaming

    @staticmethod
    def error_object(fault: Fault) -> dict[str, Any]:
        return {
            "code": fault.code or fault.status,
            "message": fault.message or "Provider returned error",
            "metadata": {"error_type": "provider_unavailable", "provider_name": PROVIDER_NAME},
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.gen_id,
            "provider": PROVIDER_NAME,
            "model": self.served,
            "object": "chat.completion.chunk",
            "created": self.created,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": finish_reason,
                    "native_finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
        }

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Generation-Id": self.gen_id,
            },
        )
        await response.prepare(request)
        # A client that gives up (after an error chunk, a malformed line, a timeout) may close
        # the connection while we write; that is its right, not a fake failure.
        try:
            with contextlib.suppress(ConnectionResetError):
                await self._write_stream(request, response)
        finally:
            if self.gen_id not in self.fake.generations:
                # Cut short (the client went away, the connection dropped, a broken line):
                # billed for what was generated, unless nothing was.
                cancelled = not request.transport or request.transport.is_closing()
                charged = self.sent > 0 and (self.fake.bill_cancelled or not cancelled)
                self.record(self.sent, "cancelled", charged=charged)
        return response

    async def _write_stream(self, request: web.Request, response: web.StreamResponse) -> None:
        async def send(payload: Any) -> None:
            await response.write(f"data: {_dumps(payload)}\n\n".encode())

        fault = self.fault
        mid_stream = fault if fault is not None and fault.kind in _MID_STREAM else None
        await response.write(b": OPENROUTER PROCESSING\n\n")
        await send(self.chunk({"role": "assistant", "content": ""}))
        if self.rich.reasoning:
            # Reasoning streams before the answer; a client must never show it.
            detail = {"type": "reasoning.text", "text": richer.REASONING_TEXT, "index": 0}
            await send(
                self.chunk({"role": "assistant", "content": "", "reasoning": richer.REASONING_TEXT})
            )
            await send(self.chunk({"role": "assistant", "reasoning_details": [detail]}))
        for index in range(len(self.pieces) + 1):
            if mid_stream is not None and index == min(mid_stream.after, len(self.pieces)):
                if mid_stream.kind == "error_chunk":
                    payload = self.chunk({"role": "assistant", "content": ""}, "error")
                    payload["error"] = self.error_object(mid_stream)
                    await send(payload)
                    self.record(self.sent, "error", charged=False)
                    await response.write_eof()
                    return
                if mid_stream.kind == "malformed":
                    await response.write(b'data: {"id": "' + self.gen_id.encode() + b'", "choi\n\n')
                    await response.write_eof()
                    return
                if mid_stream.kind == "drop":
                    assert request.transport is not None
                    request.transport.close()
                    return
                if mid_stream.kind == "hang" and not await self.fake.pause(mid_stream.seconds):
                    return
                if mid_stream.kind == "keepalive" and not await self._keep_alive(
                    response, mid_stream
                ):
                    return
            if index == len(self.pieces):
                break
            if self.fake.words_delay:
                await asyncio.sleep(self.fake.words_delay)
            await send(self.chunk({"role": "assistant", "content": self.pieces[index]}))
            self.sent += 1

        last: dict[str, Any] = {"role": "assistant", "content": ""}
        if self.rich.citations:
            last["annotations"] = self.rich.annotations()
        await send(self.chunk(last, self.finish_reason))
        kind = fault.kind if fault is not None else None
        if kind != "no_usage":
            usage_chunk = self.chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self.usage(self.sent, with_cost=kind != "no_cost")
            await send(usage_chunk)
        # Billed once the answer is complete, before the client may hang up on [DONE].
        self.record(self.sent, self.finish_reason, charged=True)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()

    async def _keep_alive(self, response: web.StreamResponse, fault: Fault) -> bool:
        """Comments only, as OpenRouter sends while a model works; True when the time passed."""
        until = asyncio.get_running_loop().time() + fault.seconds
        while asyncio.get_running_loop().time() < until:
            await response.write(b": OPENROUTER PROCESSING\n\n")
            if not await self.fake.pause(fault.every):
                return False
        return True

    async def whole(self, request: web.Request) -> web.StreamResponse:
        fault = self.fault
        kind = fault.kind if fault is not None else None
        if fault is not None and kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        if fault is not None and kind == "hang" and not await self.fake.pause(fault.seconds):
            return web.Response(status=200)
        if kind == "malformed":
            return web.Response(status=200, text='{"id": "broken', content_type="application/json")
        sent = len(self.pieces)
        finish_reason = self.finish_reason
        choice: dict[str, Any] = {"index": 0, "logprobs": None}
        if fault is not None and kind == "error_chunk":
            sent = min(fault.after, len(self.pieces))
            finish_reason = "error"
            choice["error"] = self.error_object(fault)
        choice.update(
            finish_reason=finish_reason,
            native_finish_reason=finish_reason,
            message={"role": "assistant", "content": "".join(self.pieces[:sent]), "refusal": None},
        )
        if self.rich.citations:
            choice["message"]["annotations"] = self.rich.annotations()
        if self.rich.reasoning:
            choice["message"]["reasoning"] = richer.REASONING_TEXT
        result: dict[str, Any] = {
            "id": self.gen_id,
            "provider": PROVIDER_NAME,
            "model": self.served,
            "object": "chat.completion",
            "created": self.created,
            "system_fingerprint": None,
            "choices": [choice],
        }
        if kind != "no_usage":
            result["usage"] = self.usage(sent, with_cost=kind != "no_cost")
        self.record(sent, finish_reason, charged=finish_reason != "error")
        return _json(200, result, {"X-Generation-Id": self.gen_id})


# ---- standalone -------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeOpenRouter(
        valid_keys=args.key or [DEFAULT_KEY],
        words_delay=args.delay,
        answer_words=args.words or None,
    )
    url = await fake.start(args.host, args.port)
    print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenRouter on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--words", type=int, default=0, help="answer length in words (0: echo)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--key", action="append", help="a valid API key (repeatable)")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
