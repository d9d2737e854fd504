"""Per-task locks that serialise compare-and-set updates inside one task-store process.

MongoDB applies a filtered single-document update atomically, but FerretDB 1.x on SQLite does
not: measured here, 10 concurrent ``find_one_and_update({"status": "pending"}, ...)`` calls on one
document let about five of them "win". task-store is the only writer of the tasks collection, so
taking a per-task lock around each compare-and-set restores the guarantee for a single
task-store replica on FerretDB; on MongoDB the database itself makes replicas safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class KeyedLock:
    """One ``asyncio.Lock`` per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` for the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
