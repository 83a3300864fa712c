"""The JSON endpoints beside chat: ``GET`` a document, look a model up, check a key.

A mixin of :class:`~adapters.openai_compat.client.OpenAICompatibleAdapter`, which owns the
pooled client; OpenRouter's adapter overrides the lookups with its own endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.base import GenerationInfo, KeyInfo, ModelInfo
from adapters.errors import EndpointNotFoundError, MalformedResponseError
from adapters.openai_compat.chunks import loads_exact
from adapters.openai_compat.errors import (
    MAX_DETAIL_CHARS,
    error_from_response,
    from_transport,
    scrub,
)

__all__ = ["JsonEndpoints"]


class JsonEndpoints:
    """``GET`` requests over the adapter's pooled client; failures become ProviderError."""

    name: str
    _client: httpx.AsyncClient

    @staticmethod
    def _auth(api_key: SecretStr) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key.get_secret_value()}"}

    async def _get_json(
        self,
        path: str,
        api_key: SecretStr | None,
        *,
        params: Mapping[str, str] | None = None,
        none_on_404: bool = False,
    ) -> Any:
        """``GET`` a JSON document; provider failures become ProviderError."""
        headers = self._auth(api_key) if api_key is not None else {}
        secret = api_key.get_secret_value() if api_key is not None else None
        try:
            response = await self._client.get(path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise from_transport(exc) from None
        if response.status_code == 404:
            if none_on_404:
                return None
            # Every server of this API answers this path; a 404 means the base URL points
            # elsewhere (a wrong path, another service), not that some model is unknown.
            body = response.content[:MAX_DETAIL_CHARS].decode("utf-8", "replace")
            raise EndpointNotFoundError(
                provider=self.name, url=str(response.url), detail=scrub(body, secret)
            )
        if not response.is_success:
            raise error_from_response(
                response.status_code, response.content, response.headers, secret=secret
            )
        try:
            return loads_exact(response.content)
        except ValueError:
            raise MalformedResponseError(detail=f"GET {path}: not JSON") from None

    async def _list_models(self, api_key: SecretStr | None) -> list[Mapping[str, Any]]:
        payload = await self._get_json("models", api_key)
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, list):
            raise MalformedResponseError(detail="GET /models: no `data` list")
        return [item for item in data if isinstance(item, Mapping)]

    async def lookup_model(self, model_id: str, api_key: SecretStr | None) -> ModelInfo | None:
        """Find ``model_id`` in ``GET /models`` (OpenAI's list carries no pricing)."""
        for item in await self._list_models(api_key):
            if item.get("id") == model_id:
                name = item.get("name")
                context = item.get("context_length")
                return ModelInfo(
                    id=model_id,
                    name=name if isinstance(name, str) else None,
                    context_length=context if isinstance(context, int) else None,
                )
        return None

    async def check_key(self, api_key: SecretStr) -> KeyInfo:
        """A key is good when ``GET /models`` accepts it (401 → AuthenticationError)."""
        await self._get_json("models", api_key)
        return KeyInfo()

    async def get_generation(self, generation_id: str, api_key: SecretStr) -> GenerationInfo | None:
        """Generic OpenAI-compatible APIs have no per-generation stats."""
        return None
