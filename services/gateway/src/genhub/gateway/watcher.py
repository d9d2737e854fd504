"""Follows a task's status changes: Redis events when they flow, store reads when they don't."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from genhub.common.errors import NotFound
from genhub.common.events import task_channel
from genhub.common.store_client import TaskStoreClient
from genhub.common.task_states import TERMINAL
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)

# How often the store is read when no event arrives: covers lost events and Redis outages.
FALLBACK_POLL_SECONDS = 1.0


def _key(task: task_pb2.Task) -> tuple[int, int, int]:
    return (task.update_time.ToNanoseconds(), task.status, task.attempts)


class TaskWatcher:
    """Yields a task each time it changes, until it is terminal."""

    def __init__(self, store: TaskStoreClient, redis: aioredis.Redis, prefix: str) -> None:
        self._store = store
        self._redis = redis
        self._prefix = prefix

    async def changes(
        self, task_id: str, deadline: float | None = None
    ) -> AsyncIterator[task_pb2.Task]:
        """The task now, then after every change; ends after a terminal state or the deadline."""
        pubsub = self._redis.pubsub()
        subscribed = False
        try:
            try:
                # Subscribe before the first read, so no change falls between the two.
                await pubsub.subscribe(task_channel(self._prefix, task_id))
                subscribed = True
            except (RedisError, OSError) as exc:
                log.warning("watching %s without events: %s", task_id, exc)
            task = await self._store.get(task_id)
            last = _key(task)
            yield task
            while task.status not in TERMINAL:
                timeout = FALLBACK_POLL_SECONDS
                if deadline is not None:
                    timeout = min(timeout, deadline - time.monotonic())
                    if timeout <= 0:
                        return
                update = await self._next(pubsub if subscribed else None, timeout)
                if update is None or update.status in TERMINAL:
                    # Terminal snapshots omit the result; read it, and poll when idle.
                    task = await self._store.get(task_id)
                elif update.status == task_pb2.TASK_STATUS_UNSPECIFIED:
                    raise NotFound(f"task {task_id} was deleted", metadata={"task_id": task_id})
                else:
                    task = update
                if _key(task) > last:
                    last = _key(task)
                    yield task
        finally:
            if subscribed:
                try:
                    await pubsub.unsubscribe()
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except (RedisError, OSError):
                    pass

    async def _next(
        self, pubsub: aioredis.client.PubSub | None, wait: float
    ) -> task_pb2.Task | None:
        if pubsub is None:
            await asyncio.sleep(wait)  # no events: this is the polling interval
            return None
        try:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
        except (RedisError, OSError) as exc:
            log.warning("event stream lost, polling: %s", exc)
            await asyncio.sleep(wait)
            return None
        if message is None or not isinstance(message.get("data"), bytes):
            return None
        return task_pb2.Task.FromString(message["data"])

    async def wait_finished(self, task_id: str, seconds: float) -> task_pb2.Task:
        """The task once terminal, or as it is when ``seconds`` have passed."""
        last: task_pb2.Task | None = None
        async for task in self.changes(task_id, deadline=time.monotonic() + seconds):
            last = task
        if last is None or last.status not in TERMINAL:
            last = await self._store.get(task_id)
        return last
