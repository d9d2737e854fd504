"""``AsyncOpenAI`` clients: one per (key, base URL, timeout, headers) per worker process, reused
across tasks, so connections and TLS sessions are pooled; per-request credentials get a client
of their own that is closed when the task's call ends.

Every client runs with ``max_retries=0``: GenHub owns retries (through delay queues, visible in
one place), and an SDK retry would hide attempts and sleep in a worker slot.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import openai

from genhub.providers.openai.config import OpenAISettings
from genhub.providers.sdk import CallConfig, ErrorClass, PermanentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """Where and how one call goes; the key never appears in ``repr``."""

    api_key: str
    base_url: str
    timeout: float
    headers: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, timeout={self.timeout})"

    def fingerprint(self) -> str:
        """A digest identifying the endpoint, so the key is not a dictionary key in clear."""
        material = "\x00".join(
            [self.api_key, self.base_url, repr(self.timeout), repr(self.headers)]
        )
        return hashlib.sha256(material.encode()).hexdigest()


def not_configured(provider: str, what: str) -> PermanentError:
    """The error for a call that cannot be made because the operator has not configured it."""
    return PermanentError(
        f"{provider}: no {what} is configured; store one with "
        f"PUT /api/v1/providers/{provider}/config",
        code="PROVIDER_NOT_CONFIGURED",
        error_class=ErrorClass.AUTH,
    )


def endpoint(
    provider: str, config: CallConfig, settings: OpenAISettings, *, use_environment: bool
) -> Endpoint:
    """Resolve a call's endpoint: the call's configuration first, then (for the ``openai``
    provider only) ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``.

    Raises:
        PermanentError: no key or no base URL is configured (``PROVIDER_NOT_CONFIGURED``).
    """
    api_key = config.api_key
    base_url = config.api_base
    if use_environment:
        api_key = api_key or settings.api_key.get_secret_value()
        base_url = base_url or settings.base_url
    if not api_key:
        raise not_configured(provider, "API key")
    if not base_url:
        raise not_configured(provider, "API base URL")
    return Endpoint(
        api_key=api_key,
        base_url=base_url,
        timeout=config.timeout_seconds or settings.timeout_seconds,
        headers=config.extra_headers,
    )


@dataclass
class _Pooled:
    client: openai.AsyncOpenAI
    users: int = 0
    retired: bool = False


class ClientPool:
    """Builds, caches and closes the SDK clients of one adapter."""

    def __init__(self, settings: OpenAISettings) -> None:
        self._settings = settings
        self._pooled: OrderedDict[str, _Pooled] = OrderedDict()

    def _build(self, target: Endpoint) -> openai.AsyncOpenAI:
        settings = self._settings
        timeout = httpx2.Timeout(
            target.timeout, connect=min(settings.connect_timeout_seconds, target.timeout)
        )
        http_client = openai.DefaultAsyncHttpxClient(
            timeout=timeout,
            limits=httpx2.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
                keepalive_expiry=settings.keepalive_expiry_seconds,
            ),
        )
        return openai.AsyncOpenAI(
            api_key=target.api_key,
            base_url=target.base_url,
            timeout=timeout,
            max_retries=0,
            default_headers=dict(target.headers) or None,
            http_client=http_client,
        )

    @contextlib.asynccontextmanager
    async def client(self, target: Endpoint, *, shared: bool) -> AsyncIterator[openai.AsyncOpenAI]:
        """A client for ``target``: the pooled one if ``shared``, else a fresh one closed on exit.

        Per-request credentials must not be shared: they belong to one task.
        """
        if not shared:
            private = self._build(target)
            try:
                yield private
            finally:
                await private.close()
            return
        key = target.fingerprint()
        pooled = self._pooled.get(key)
        if pooled is None:
            pooled = _Pooled(self._build(target))
            self._pooled[key] = pooled
            await self._evict()
        self._pooled.move_to_end(key)
        pooled.users += 1
        try:
            yield pooled.client
        finally:
            pooled.users -= 1
            if pooled.retired and pooled.users == 0:
                await pooled.client.close()

    async def _evict(self) -> None:
        # A rotated key leaves its old client behind: drop the least recently used ones, closing
        # each once no call uses it any more.
        while len(self._pooled) > self._settings.max_clients:
            _, oldest = self._pooled.popitem(last=False)
            oldest.retired = True
            if oldest.users == 0:
                await oldest.client.close()

    def __len__(self) -> int:
        return len(self._pooled)

    async def aclose(self) -> None:
        """Close every pooled client (idempotent)."""
        while self._pooled:
            _, pooled = self._pooled.popitem()
            await pooled.client.close()
