"""Each provider's facts, and the lookups the rest of routerbot uses instead of naming one.

A :class:`Provider` is its short name (settings, storage, the ledger), the name people read,
which model ids and keys are its, the names of the settings that hold its base URL and the
operator's fallback key, and how to build its adapter. Nothing outside this module names a
provider.

Importing this module stays cheap (the console's command parser needs the provider names
before its prompt appears): an adapter's module, and with it httpx, is imported only when the
adapter is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

    from adapters.base import ProviderAdapter

__all__ = [
    "DEFAULT_PROVIDER",
    "FIREWORKS",
    "OPENROUTER",
    "PROVIDERS",
    "AdapterOptions",
    "Provider",
    "build_adapters",
    "display_name",
    "find_provider",
    "provider_for_key",
    "provider_for_model",
    "provider_names",
]


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """What every adapter is built with besides its base URL."""

    #: Sent for attribution where the provider supports it (OpenRouter's ``HTTP-Referer``).
    app_url: str | None = None
    app_title: str = "routerbot"
    #: What carries the adapters' HTTP: ``aiohttp`` (cheaper per streamed event) or httpx's
    #: own transport (``httpx``); see :mod:`adapters.openai_compat.transport`.
    transport: str = "aiohttp"


def _transport(options: AdapterOptions) -> httpx.AsyncBaseTransport | None:
    from adapters.openai_compat.client import MAX_CONNECTIONS
    from adapters.openai_compat.transport import provider_transport

    return provider_transport(options.transport, max_connections=MAX_CONNECTIONS)


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's facts."""

    #: Short name in settings, storage, the ledger and ``--provider``: ``openrouter``.
    name: str
    #: The name people read: ``OpenRouter``.
    display_name: str
    #: The settings field (and, upper-cased, environment variable) holding its base URL.
    base_url_setting: str
    #: The settings field holding the operator's key for workspaces without their own.
    api_key_setting: str
    #: Where people can browse its model ids.
    models_page: str
    #: Builds its adapter (one pooled client) for a base URL.
    build: Callable[[str, AdapterOptions], ProviderAdapter] = field(repr=False, compare=False)
    #: Model ids that are its start with one of these.
    model_prefixes: tuple[str, ...] = ()
    #: Its keys start with one of these (the first is shown as a hint: ``fw_…``).
    key_prefixes: tuple[str, ...] = ()

    def owns_model(self, model_id: str) -> bool:
        return bool(self.model_prefixes) and model_id.startswith(self.model_prefixes)

    def owns_key(self, key: str) -> bool:
        return bool(self.key_prefixes) and key.startswith(self.key_prefixes)

    @property
    def key_hint(self) -> str:
        """What its keys look like, for forms: ``sk-or-…``."""
        return f"{self.key_prefixes[0]}…" if self.key_prefixes else ""


_OPENROUTER_HOST = "openrouter.ai"


def _build_openrouter(base_url: str, options: AdapterOptions) -> ProviderAdapter:
    """An ``OPENROUTER_BASE_URL`` that is not OpenRouter (a local llama.cpp, vLLM or Ollama)
    gets ``compat_fallback`` so model and key checks use the OpenAI ``/models`` list there."""
    from adapters.openrouter import OpenRouterAdapter  # imported when built: see the docstring

    host = (urlsplit(base_url).hostname or "").lower()
    is_openrouter = host == _OPENROUTER_HOST or host.endswith("." + _OPENROUTER_HOST)
    return OpenRouterAdapter(
        base_url,
        app_url=options.app_url,
        app_title=options.app_title,
        compat_fallback=not is_openrouter,
        transport=_transport(options),
    )


def _build_fireworks(base_url: str, options: AdapterOptions) -> ProviderAdapter:
    from adapters.fireworks import FireworksAdapter  # imported when built: see the docstring

    return FireworksAdapter(base_url, transport=_transport(options))


OPENROUTER = Provider(
    name="openrouter",
    display_name="OpenRouter",
    base_url_setting="openrouter_base_url",
    api_key_setting="openrouter_api_key",
    models_page="openrouter.ai/models",
    build=_build_openrouter,
    key_prefixes=("sk-or-",),
)
FIREWORKS = Provider(
    name="fireworks",
    display_name="Fireworks",
    base_url_setting="fireworks_base_url",
    api_key_setting="fireworks_api_key",
    models_page="fireworks.ai/models",
    build=_build_fireworks,
    model_prefixes=("accounts/",),
    key_prefixes=("fw_",),
)
#: Every provider, the default first.
PROVIDERS: tuple[Provider, ...] = (OPENROUTER, FIREWORKS)
#: Serves model ids and keys no other provider claims.
DEFAULT_PROVIDER = OPENROUTER

_BY_NAME = {p.name: p for p in PROVIDERS}


def provider_names() -> tuple[str, ...]:
    """Short names of every provider, the default first."""
    return tuple(_BY_NAME)


def find_provider(name: str | None) -> Provider | None:
    """The provider called ``name`` (case-insensitive), or ``None``."""
    return _BY_NAME.get(name.lower()) if name else None


def display_name(name: str) -> str:
    """The name people read for provider ``name``; an unknown name as it is."""
    provider = find_provider(name)
    return provider.display_name if provider is not None else name


def provider_for_model(model_id: str) -> str:
    """The provider whose ids look like ``model_id`` (``accounts/…`` → ``fireworks``), else the
    default one."""
    return next((p.name for p in PROVIDERS if p.owns_model(model_id)), DEFAULT_PROVIDER.name)


def provider_for_key(key: str) -> str:
    """The provider whose keys look like ``key`` (``fw_…`` → ``fireworks``), else the default."""
    return next((p.name for p in PROVIDERS if p.owns_key(key)), DEFAULT_PROVIDER.name)


def build_adapters(
    base_urls: Mapping[str, str],
    *,
    app_url: str | None,
    app_title: str,
    transport: str = "aiohttp",
) -> dict[str, ProviderAdapter]:
    """One adapter (one pooled client) per provider in ``base_urls``, keyed by provider name."""
    options = AdapterOptions(app_url=app_url, app_title=app_title, transport=transport)
    adapters: dict[str, ProviderAdapter] = {}
    for name, base_url in base_urls.items():
        provider = find_provider(name)
        if provider is None:
            raise ValueError(f"unknown provider {name!r}; known: {', '.join(provider_names())}")
        adapters[provider.name] = provider.build(base_url, options)
    return adapters
