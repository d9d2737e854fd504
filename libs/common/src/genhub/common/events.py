"""Task status events on Redis pub/sub: task-store publishes every transition; watchers subscribe.

An event carries the task as it was right after the change, without its (possibly large) result,
so a watcher streams every transition even when several happen within milliseconds. Events are
an optimisation, not the source of truth: watchers fall back to reading the store when Redis is
down, and read the full task from the store once it is terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from genhub.v1 import task_pb2

log = logging.getLogger(__name__)


def task_channel(prefix: str, task_id: str) -> str:
    """The channel that carries a task's status changes."""
    return f"{prefix}task-events:{task_id}"


def snapshot(task: task_pb2.Task) -> bytes:
    """The event payload for ``task``: the task without its result."""
    light = task_pb2.Task()
    light.CopyFrom(task)
    light.ClearField("result")
    return light.SerializeToString()


class EventPublisher:
    """Publishes status events in pipelined batches; failures are logged and dropped (events
    are best effort: watchers fall back to reading the store).

    ``task_changed`` only appends to a buffer, so a lifecycle operation never waits for Redis;
    one flusher sends whatever accumulated in one pipeline (one round trip), in order, so a
    task's events arrive in the order of its changes. Under load batches grow by themselves;
    when idle an event leaves at once.
    """

    def __init__(self, client: aioredis.Redis, prefix: str = "genhub:") -> None:
        self._client = client
        self._prefix = prefix
        self._buffer: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        """Start the flusher (in the running event loop)."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._run())

    async def task_changed(self, task: task_pb2.Task) -> None:
        """Announce ``task``'s new state (status UNSPECIFIED announces its deletion)."""
        self._buffer.append((task_channel(self._prefix, task.task_id), snapshot(task)))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send everything buffered now, in one pipeline."""
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for channel, payload in batch:
                    pipe.publish(channel, payload)
                await pipe.execute()
            if self._failing:
                log.info("status events flow again")
                self._failing = False
        except (RedisError, OSError) as exc:
            if not self._failing:  # one line per outage, not one per event
                log.warning("status events dropped while Redis fails: %s", exc)
                self._failing = True

    async def close(self) -> None:
        """Stop the flusher after sending what is buffered (idempotent)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
