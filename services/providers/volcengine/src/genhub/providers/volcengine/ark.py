"""Ark runtime calls through the official async SDK (``volcenginesdkarkruntime.AsyncArk``).

Seedream images (``POST /images/generations``, answered when the images are ready), Doubao chat
(``POST /chat/completions``) and Seedance video jobs (``/contents/generations/tasks``: create,
get, delete). Wire formats: provider-apis.md §1.

The SDK's own retries are off (``max_retries=0``): GenHub retries through its delay queues, so
every attempt is counted and visible in one place, and ``Retry-After`` is honoured (the SDK
ignores it). Each client has its own ``httpx.AsyncClient`` whose idle connections expire before
servers drop them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from volcenginesdkarkruntime import AsyncArk
from volcenginesdkarkruntime._exceptions import ArkAPIError, ArkNotFoundError

from genhub.providers.sdk import AuthFailed, Call, InvalidParameter, ProviderError
from genhub.providers.volcengine.ark_errors import map_ark_error
from genhub.providers.volcengine.clients import ClientPool
from genhub.providers.volcengine.config import VolcengineSettings

T = TypeVar("T")

# The server's x-request-id of the latest response in this asyncio task: set by an httpx event
# hook, which runs in the caller's task, so concurrent tasks never see each other's ids.
_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("ark_request_id", default="")


async def _remember_request_id(response: httpx.Response) -> None:
    _REQUEST_ID.set(response.headers.get("x-request-id", ""))


@dataclass(frozen=True)
class ArkEndpoint:
    """What a client is built for; equal endpoints share one client."""

    base_url: str
    api_key: str = field(repr=False)
    timeout: float
    connect_timeout: float


class ArkClients:
    """Ark clients per endpoint and key, and the one way calls are made through them."""

    def __init__(self, settings: VolcengineSettings) -> None:
        self._settings = settings
        self._pool: ClientPool[ArkEndpoint, AsyncArk] = ClientPool(self._make, _close)

    @property
    def pool(self) -> ClientPool[ArkEndpoint, AsyncArk]:
        """The client pool (tests look at what it caches)."""
        return self._pool

    def _make(self, endpoint: ArkEndpoint) -> AsyncArk:
        settings = self._settings
        timeout = httpx.Timeout(endpoint.timeout, connect=endpoint.connect_timeout)
        http = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
                keepalive_expiry=settings.keepalive_expiry_seconds,
            ),
            follow_redirects=True,
            event_hooks={"response": [_remember_request_id]},
        )
        return AsyncArk(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            timeout=timeout,
            max_retries=0,
            http_client=http,
        )

    def endpoint(self, call: Call) -> tuple[ArkEndpoint, bool]:
        """The endpoint for a call and whether its client may be cached.

        Raises:
            AuthFailed: no API key anywhere, or per-request credentials without one.
        """
        config = self._settings
        call_config = call.config
        if call_config.source == "request":
            key = call_config.api_key
            if not key:
                raise AuthFailed(
                    "the request's credentials carry no api_key, which Ark needs",
                    code="MISSING_API_KEY",
                )
        else:
            key = call_config.api_key or config.ark_api_key.get_secret_value()
            if not key:
                raise AuthFailed(
                    "no Ark API key: set ARK_API_KEY on the volcengine worker or store one "
                    "with PUT /api/v1/providers/volcengine/config",
                    code="MISSING_API_KEY",
                )
        timeout = call_config.timeout_seconds or config.timeout_seconds
        endpoint = ArkEndpoint(
            base_url=(call_config.api_base or config.ark_base_url).rstrip("/"),
            api_key=key,
            timeout=timeout,
            connect_timeout=min(config.connect_timeout_seconds, timeout),
        )
        return endpoint, call_config.source != "request"

    async def call(
        self,
        call: Call,
        request: Callable[[AsyncArk, dict[str, str]], Awaitable[T]],
        *,
        not_found: Callable[[ArkNotFoundError], ProviderError] | None = None,
    ) -> tuple[T, str]:
        """Run ``request(client, extra_headers)``; returns its result and the request id.

        Raises:
            ProviderError: the mapped SDK error (``not_found`` decides for a 404 if given).
        """
        endpoint, cache = self.endpoint(call)
        headers = dict(call.config.extra_headers)
        async with self._pool.lease(endpoint, cache=cache) as client:
            _REQUEST_ID.set("")
            try:
                result = await request(client, headers)
            except ArkNotFoundError as exc:
                if not_found is not None:
                    raise not_found(exc) from None
                raise map_ark_error(exc, (endpoint.api_key,)) from None
            except ArkAPIError as exc:
                raise map_ark_error(exc, (endpoint.api_key,)) from None
            return result, _REQUEST_ID.get()

    async def aclose(self) -> None:
        """Close every cached client."""
        await self._pool.aclose()


async def _close(client: AsyncArk) -> None:
    await client.close()


def no_negative_prompt(call: Call) -> None:
    """Ark's image and video models take no negative prompt: refuse rather than ignore it."""
    if call.task.WhichOneof("spec") == "image" and call.task.image.negative_prompt:
        raise InvalidParameter(
            f"{call.task.model} takes no negative prompt (image.negative_prompt)",
            code="UNSUPPORTED_PARAMETER",
        )


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments that were given."""
    return {k: v for k, v in values.items() if v is not None}
