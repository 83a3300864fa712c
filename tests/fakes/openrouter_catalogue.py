"""The fake OpenRouter's model catalogue, and the controls that change it while routerbot runs.

It serves the catalogue routes of ``reference/openrouter-openapi.yaml``: ``GET /models`` (the
``Model`` objects: ``id``, ``canonical_slug``, ``name``, ``created``, ``context_length``,
``pricing`` as USD-per-token strings, ``architecture.input_modalities``,
``supported_parameters``, ``expiration_date``, ``alias_target`` for ``~author/…-latest`` rows),
``GET /model/{author}/{slug}`` (variant suffixes resolve to the base model, as OpenRouter's
do) and ``GET /models/{author}/{slug}/endpoints``.

A test changes the catalogue the way vendors change OpenRouter's::

    fake = FakeOpenRouter(models=LATE_2026_MODELS)
    fake.catalogue.set_price("openai/gpt-5-mini", prompt="0.0000003")   # a price change
    fake.catalogue.retire("anthropic/claude-3.5-sonnet")                  # gone from GET /models
    fake.catalogue.expire("google/gemini-2.5-flash", "2026-10-22")        # dated, still listed
    assert fake.catalogue.list_calls == 1                                 # GET /models served

A retired model stays known to its endpoints route (a model page with ``endpoints: []``, as the
OpenAPI example shows) but ``GET /model/…`` 404s, and a chat with it answers 404
``No endpoints found for <id>.`` (see :meth:`FakeCatalogue.chat_refusal`). An id that never
existed 404s everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

__all__ = [
    "LATE_2026_MODELS",
    "PROVIDER_NAME",
    "RETIRED_IN_2026",
    "ROUTING_VARIANTS",
    "FakeCatalogue",
    "FakeModel",
]

PROVIDER_NAME = "FakeProvider"
#: Variants that pick a provider for a model (OpenRouter lists the base model only). ``:free``
#: is not one of them: free variants are catalogue rows of their own and come and go alone.
ROUTING_VARIANTS = ("nitro", "floor", "online", "exacto")
_DEFAULT_PARAMETERS = ("temperature", "max_tokens", "max_completion_tokens")


@dataclass(frozen=True, slots=True)
class FakeModel:
    """A catalogue entry. Prices are OpenRouter's USD-per-token strings."""

    id: str
    name: str
    prompt: str
    completion: str
    input_cache_read: str | None = None
    context_length: int = 128_000
    #: False: ``GET /model/{a}/{s}`` 404s but the endpoints route knows it (the lookup gap
    #: the adapter must bridge).
    on_model_route: bool = True
    #: ``(provider_name, prompt, completion)`` per endpoint; default: one at the model's price.
    endpoints: tuple[tuple[str, str, str], ...] = ()
    #: USD per web search request (``pricing.web_search``).
    web_search: str | None = None
    input_modalities: tuple[str, ...] = ("text",)
    #: ``YYYY-MM-DD``: the date after which OpenRouter may remove the model.
    expiration_date: str | None = None
    created: int = 1_700_000_000
    #: For ``~author/family-latest`` rows: the concrete model the alias routes to.
    alias_target: str | None = None
    supported_parameters: tuple[str, ...] = _DEFAULT_PARAMETERS

    def pricing(self) -> dict[str, str]:
        pricing = {"prompt": self.prompt, "completion": self.completion, "request": "0"}
        if self.input_cache_read is not None:
            pricing["input_cache_read"] = self.input_cache_read
        if self.web_search is not None:
            pricing["web_search"] = self.web_search
        return pricing


def _per_1m(usd: str) -> str:
    """``"3"`` (USD per 1M) as OpenRouter's per-token string ``"0.000003"``."""
    return format((Decimal(usd) / 1_000_000).normalize(), "f")


def _model(
    model_id: str,
    name: str,
    price_in: str,
    price_out: str,
    cached: str | None = None,
    **extra: Any,
) -> FakeModel:
    return FakeModel(
        model_id,
        name,
        _per_1m(price_in),
        _per_1m(price_out),
        _per_1m(cached) if cached is not None else None,
        **extra,
    )


#: What OpenRouter serves in late 2026, as far as the recommendations need it (prices per 1M
#: as in defaultModelSettings.json), plus a small-context model and two retired ones (below).
LATE_2026_MODELS: tuple[FakeModel, ...] = (
    _model(
        "~anthropic/claude-sonnet-latest",
        "Anthropic Claude Sonnet Latest",
        "2",
        "10",
        "0.2",
        context_length=1_000_000,
        input_modalities=("text", "image", "file"),
        alias_target="anthropic/claude-sonnet-5",
        created=1_782_777_600,
    ),
    _model(
        "anthropic/claude-sonnet-5",
        "Anthropic: Claude Sonnet 5",
        "2",
        "10",
        "0.2",
        context_length=1_000_000,
        input_modalities=("text", "image", "file"),
        web_search="0.01",
        created=1_782_777_600,
    ),
    _model(
        "deepseek/deepseek-v4-flash",
        "DeepSeek: DeepSeek V4 Flash",
        "0.14",
        "0.28",
        context_length=1_048_576,
        created=1_776_988_800,
    ),
    _model(
        "openai/gpt-5-mini",
        "OpenAI: GPT-5 Mini",
        "0.25",
        "2",
        "0.025",
        context_length=400_000,
        input_modalities=("text", "image", "file"),
        created=1_754_524_800,
    ),
    _model(
        "google/gemini-3.5-flash",
        "Google: Gemini 3.5 Flash",
        "1.5",
        "9",
        context_length=1_048_576,
        input_modalities=("text", "image", "file", "audio"),
        created=1_779_148_800,
    ),
    _model(
        "meta-llama/llama-3.3-70b-instruct",
        "Meta: Llama 3.3 70B Instruct",
        "0.1",
        "0.32",
        context_length=131_072,
        created=1_733_443_200,
    ),
    _model(
        "meta-llama/llama-3.3-70b-instruct:free",
        "Meta: Llama 3.3 70B Instruct (free)",
        "0",
        "0",
        context_length=65_536,
        created=1_733_443_200,
    ),
    # A small context, for the trimming of long conversations.
    _model(
        "tiny/context-2k",
        "Tiny: Context 2K",
        "0.05",
        "0.1",
        context_length=2_048,
        created=1_700_000_000,
    ),
)

#: Listed in the fake until a test retires them: the models the old recommendations named.
RETIRED_IN_2026: tuple[FakeModel, ...] = (
    _model(
        "anthropic/claude-3.5-sonnet",
        "Anthropic: Claude 3.5 Sonnet",
        "3",
        "15",
        "0.3",
        context_length=200_000,
    ),
    _model(
        "google/gemini-2.0-flash-001",
        "Google: Gemini 2.0 Flash",
        "0.1",
        "0.4",
        "0.025",
        context_length=1_048_576,
    ),
)


class FakeCatalogue:
    """The models the fake serves, and the ones it no longer does."""

    def __init__(self, models: Iterable[FakeModel]) -> None:
        self.models: dict[str, FakeModel] = {m.id: m for m in models}
        #: Models retired by a test: gone from ``GET /models``, 404 on chat.
        self.retired: dict[str, FakeModel] = {}
        #: ``GET /models`` requests served (routerbot must make one per refresh).
        self.list_calls = 0

    # ---- controls ---------------------------------------------------------------------

    def add(self, model: FakeModel) -> None:
        self.retired.pop(model.id, None)
        self.models[model.id] = model

    def retire(self, model_id: str) -> None:
        """The vendor retired it: it leaves the list, and chats answer 404."""
        self.retired[model_id] = self.models.pop(model_id)

    def set_price(
        self,
        model_id: str,
        *,
        prompt: str | None = None,
        completion: str | None = None,
        input_cache_read: str | None = None,
    ) -> None:
        """Change a price (USD-per-token strings, as OpenRouter writes them)."""
        model = self.models[model_id]
        changes: dict[str, Any] = {}
        if prompt is not None:
            changes["prompt"] = prompt
        if completion is not None:
            changes["completion"] = completion
        if input_cache_read is not None:
            changes["input_cache_read"] = input_cache_read
        self.models[model_id] = dataclasses.replace(model, **changes)

    def expire(self, model_id: str, date: str) -> None:
        """Give the model an ``expiration_date`` (``YYYY-MM-DD``); it stays listed."""
        self.models[model_id] = dataclasses.replace(self.models[model_id], expiration_date=date)

    # ---- lookups ----------------------------------------------------------------------

    def find(self, model_id: str) -> FakeModel | None:
        """The served model for an id, resolving routing variants to their base model."""
        model = self.models.get(model_id)
        if model is not None:
            return model
        base, _, variant = model_id.partition(":")
        if variant in ROUTING_VARIANTS:
            return self.models.get(base)
        return None

    def served_as(self, model_id: str) -> str:
        """The ``model`` a response names: an alias's concrete target, else the id."""
        model = self.find(model_id)
        if model is not None and model.alias_target is not None:
            return model.alias_target
        return model_id

    def chat_refusal(self, model_id: str) -> tuple[int, str] | None:
        """OpenRouter's answer to a chat with a retired model, else ``None``."""
        if model_id in self.retired or model_id.partition(":")[0] in self.retired:
            return 404, f"No endpoints found for {model_id}."
        return None

    # ---- HTTP -------------------------------------------------------------------------

    def mount(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(f"{prefix}/models", self._list)
        router.add_get(f"{prefix}/model/{{author}}/{{slug}}", self._one)
        router.add_get(f"{prefix}/models/{{author}}/{{slug}}/endpoints", self._endpoints)

    def model_object(self, model: FakeModel, prefix: str) -> dict[str, Any]:
        """A ``Model`` of the OpenAPI description."""
        author, _, slug = model.id.partition("/")
        data: dict[str, Any] = {
            "id": model.id,
            "canonical_slug": model.id.split(":")[0],
            "name": model.name,
            "created": model.created,
            "description": f"{model.name} (fake)",
            "context_length": model.context_length,
            "architecture": {
                "input_modalities": list(model.input_modalities),
                "output_modalities": ["text"],
                "modality": "+".join(model.input_modalities) + "->text",
                "tokenizer": "Other",
                "instruct_type": None,
            },
            "pricing": model.pricing(),
            "top_provider": {
                "context_length": model.context_length,
                "max_completion_tokens": 4096,
                "is_moderated": False,
            },
            "per_request_limits": None,
            "supported_parameters": list(model.supported_parameters),
            "default_parameters": None,
            "supported_voices": None,
            "expiration_date": model.expiration_date,
            "knowledge_cutoff": None,
            "links": {"details": f"{prefix}/models/{author}/{slug}/endpoints"},
        }
        if model.alias_target is not None:
            target = self.models.get(model.alias_target)
            data["alias_target"] = {
                "slug": model.alias_target,
                "name": target.name if target is not None else model.alias_target,
            }
        return data

    async def _list(self, request: web.Request) -> web.Response:
        self.list_calls += 1
        prefix = request.path.removesuffix("/models")
        return _json(200, {"data": [self.model_object(m, prefix) for m in self.models.values()]})

    async def _one(self, request: web.Request) -> web.Response:
        model_id = f"{request.match_info['author']}/{request.match_info['slug']}"
        model = self.find(model_id)
        if model is None or not model.on_model_route:
            return _json(404, _error(404, "Model not found"))
        prefix = request.path.split("/model/", 1)[0]
        data = self.model_object(model, prefix)
        data["id"] = model_id  # the variant asked for, priced as its base model
        return _json(200, {"data": data})

    async def _endpoints(self, request: web.Request) -> web.Response:
        model_id = f"{request.match_info['author']}/{request.match_info['slug']}"
        retired = self.retired.get(model_id)
        model = retired or self.find(model_id)
        if model is None:
            return _json(404, _error(404, "Model not found"))
        endpoints = [] if retired is not None else self._endpoint_objects(model)
        data = {
            "id": model.id,
            "name": model.name,
            "created": model.created,
            "description": f"{model.name} (fake)",
            "architecture": {
                "input_modalities": list(model.input_modalities),
                "output_modalities": ["text"],
                "modality": "text->text",
                "tokenizer": "Other",
                "instruct_type": None,
            },
            "endpoints": endpoints,
        }
        return _json(200, {"data": data})

    @staticmethod
    def _endpoint_objects(model: FakeModel) -> list[dict[str, Any]]:
        providers = model.endpoints or ((PROVIDER_NAME, model.prompt, model.completion),)
        endpoints = []
        for provider, prompt, completion in providers:
            pricing = {"prompt": prompt, "completion": completion, "request": "0"}
            if model.input_cache_read is not None:
                pricing["input_cache_read"] = model.input_cache_read
            endpoints.append(
                {
                    "name": f"{provider} | {model.id}",
                    "model_id": model.id,
                    "model_name": model.name,
                    "context_length": model.context_length,
                    "pricing": pricing,
                    "provider_name": provider,
                    "tag": provider.lower(),
                    "quantization": "fp16",
                    "max_completion_tokens": 4096,
                    "max_prompt_tokens": None,
                    "supported_parameters": list(model.supported_parameters),
                    "status": 0,
                    "uptime_last_30m": 100,
                    "uptime_last_5m": 100,
                    "uptime_last_1d": 100,
                    "supports_implicit_caching": False,
                    "latency_last_30m": None,
                    "throughput_last_30m": None,
                }
            )
        return endpoints


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json(status: int, payload: Any) -> web.Response:
    return web.json_response(payload, status=status)
