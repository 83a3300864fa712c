"""``AiohttpTransport``: an httpx transport that sends requests with aiohttp.

The adapters speak httpx (requests, responses, its exception tree, which
:func:`adapters.openai_compat.errors.from_transport` maps to the error taxonomy); this only
swaps what moves the bytes. httpx's own stack (httpcore, h11, anyio) spent ~0.3 ms of CPU on
every SSE event of a streamed answer, aiohttp's C parser about a third of that
(``benchmarks/slack_load.py``; see benchmarks/README.md), and a chat reads dozens of events.

What httpx would do, this does too: the request's timeouts (``connect``, ``read`` between
two reads, ``pool``) apply, a body is handed over undecoded (httpx decodes it), and proxies
come from ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` as the transport is created (httpx
reads them when its client is). Not through aiohttp's ``trust_env``: that looks the proxy and
``~/.netrc`` up again on every request, in two thread hand-offs. aiohttp's failures are raised
as the httpx exceptions httpx raises for the same event:

    connect timed out (or no free connection)   -> httpx.ConnectTimeout
    nothing read for the read timeout           -> httpx.ReadTimeout
    host unreachable, refused, DNS              -> httpx.ConnectError
    connection lost, malformed or cut-off body  -> httpx.RemoteProtocolError / httpx.ReadError
    not an http(s) URL                          -> httpx.UnsupportedProtocol
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpTransport", "provider_transport"]

#: Request headers aiohttp writes itself from the body and the URL.
_COMPUTED = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
    connect, pool = timeouts.get("connect"), timeouts.get("pool")
    return aiohttp.ClientTimeout(
        total=None,
        # aiohttp's ``connect`` covers waiting for a pooled connection and opening one.
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=timeouts.get("read"),
    )


def _mapped(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception for an aiohttp failure (see the module docstring)."""
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ClientOSError):
        return httpx.ReadError(message, request=request)
    return httpx.RemoteProtocolError(message, request=request)


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it returns or closes the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                # Every read is a checkpoint, as in httpx's own stack (anyio): a body already
                # buffered must not be read through in one go without letting other tasks
                # run, e.g. a Stop that cancels the stream at its next wait.
                await asyncio.sleep(0)
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(exc, self._request) from exc

    async def aclose(self) -> None:
        # A body read to its end goes back to the pool; one left unread (a stream closed
        # early) takes its connection with it, as the server may still be sending.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (its connection pool) for one httpx client."""

    def __init__(self, *, max_connections: int, keepalive_expiry: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        #: ``{"http": url, "https": url, "no": hosts, …}`` from the environment, read once.
        self._env_proxies = urllib.request.getproxies_environment()
        self._proxies: dict[tuple[str, str], tuple[URL | None, aiohttp.BasicAuth | None]] = {}

    def _proxy(self, url: httpx.URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        """The proxy (and its credentials) for ``url``'s scheme and host, as httpx picks it."""
        key = (url.scheme, url.host)
        found = self._proxies.get(key)
        if found is None:
            env = self._env_proxies
            proxy = env.get(url.scheme) or env.get("all")
            # Not in typeshed, but in urllib since Python 3.0: NO_PROXY as read above.
            bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
            if not proxy or bypass(url.host, env):
                found = (None, None)
            else:
                parsed = URL(proxy if "://" in proxy else f"http://{proxy}")
                auth = aiohttp.BasicAuth.from_url(parsed)
                found = (parsed.with_user(None) if auth else parsed, auth)
            self._proxies[key] = found
        return found

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: aiohttp binds a session to the running loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_expiry,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes, as with its own transport
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower().decode("latin-1") not in _COMPUTED
        ]
        body = await request.aread()
        proxy, proxy_auth = self._proxy(request.url)
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                timeout=_timeout(request),
                allow_redirects=False,
                compress=None,
                proxy=proxy,
                proxy_auth=proxy_auth,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(exc, request) from exc
        return httpx.Response(
            response.status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
            stream=_Body(response, request),
            extensions={
                "http_version": f"HTTP/{response.version.major}.{response.version.minor}".encode()
                if response.version
                else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_connections={self._max_connections})"


def provider_transport(kind: str, *, max_connections: int) -> httpx.AsyncBaseTransport | None:
    """The transport for ``ROUTERBOT_PROVIDER_TRANSPORT``: ``aiohttp`` (this module's), or
    ``httpx`` (``None``: httpx's own, which the adapters' unit tests mock with respx)."""
    if kind == "aiohttp":
        return AiohttpTransport(max_connections=max_connections)
    return None
