"""SDK clients kept per (endpoint, credentials, timeouts) for the life of the worker process.

A client owns a connection pool; making one per task would pay a TLS handshake per task and
leave sockets behind. The deployment's and the stored configuration's clients are therefore
cached and shared by every task that uses the same settings. Clients for per-request
credentials are made for their one task and closed when it ends: a caller's key is not kept in
memory beyond the task that brought it.

When keys are rotated the cache would grow by one client per rotation; past ``max_cached``
clients, those no task is using are closed and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")


@dataclass
class _Entry(Generic[C]):
    client: C
    users: int = 0


class ClientPool(Generic[K, C]):
    """Hands out clients by key; cached ones are shared, uncached ones live for one lease.

    Args:
        make: Builds a client for a key (must not do I/O).
        close: Releases a client's connections.
        max_cached: Cached clients kept before idle ones are closed.
    """

    def __init__(
        self,
        make: Callable[[K], C],
        close: Callable[[C], Awaitable[None]],
        *,
        max_cached: int = 8,
    ) -> None:
        self._make = make
        self._close = close
        self._max_cached = max_cached
        self._cached: dict[K, _Entry[C]] = {}
        self._closed = False

    @property
    def cached(self) -> int:
        """How many clients are cached now."""
        return len(self._cached)

    @contextlib.asynccontextmanager
    async def lease(self, key: K, *, cache: bool = True) -> AsyncIterator[C]:
        """A client for ``key``: the cached one (made on first use) or, without ``cache``, a
        new one closed when the block exits."""
        if self._closed:
            raise RuntimeError("client pool is closed")
        if not cache:
            client = self._make(key)
            try:
                yield client
            finally:
                await self._close(client)
            return
        entry = self._cached.get(key)
        if entry is None:
            entry = self._cached[key] = _Entry(self._make(key))
            await self._evict_idle(keep=key)
        entry.users += 1
        try:
            yield entry.client
        finally:
            entry.users -= 1

    async def _evict_idle(self, keep: K) -> None:
        for key in list(self._cached):
            if len(self._cached) <= self._max_cached:
                return
            entry = self._cached[key]
            if key != keep and entry.users == 0:
                del self._cached[key]
                await self._close(entry.client)

    async def aclose(self) -> None:
        """Close every cached client (idempotent)."""
        self._closed = True
        entries, self._cached = list(self._cached.values()), {}
        results = await asyncio.gather(
            *(self._close(e.client) for e in entries), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Exception):
                log.warning("client not closed cleanly: %s", type(result).__name__)
