"""The provider catalogue as the gateway sees it: read from task-store, cached briefly.

Workers declare their provider's catalogue to task-store when they start; the gateway validates
against what is stored, so the gateway image carries no provider package or SDK.
"""

from __future__ import annotations

import asyncio
import time

from genhub.common.store_client import TaskStoreClient
from genhub.v1 import provider_pb2


class Catalogue:
    """Providers by name, refreshed from task-store at most every ``ttl`` seconds."""

    def __init__(self, store: TaskStoreClient, ttl: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl
        self._providers: dict[str, provider_pb2.Provider] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def providers(self) -> dict[str, provider_pb2.Provider]:
        """The current providers by name."""
        if time.monotonic() - self._fetched_at > self._ttl:
            async with self._lock:
                if time.monotonic() - self._fetched_at > self._ttl:
                    found = await self._store.list_providers()
                    self._providers = {p.name: p for p in found}
                    self._fetched_at = time.monotonic()
        return self._providers

    def invalidate(self) -> None:
        """Forget the cache; the next call reads task-store."""
        self._fetched_at = float("-inf")
