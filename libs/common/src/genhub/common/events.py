"""Task status events on Redis pub/sub: task-store publishes every transition; watchers subscribe.

An event carries the task as it was right after the change, without its (possibly large) result,
so a watcher streams every transition even when several happen within milliseconds. Events are
an optimisation, not the source of truth: watchers fall back to reading the store when Redis is
down, and read the full task from the store once it is terminal.
"""

from __future__ import annotations

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
    """Publishes status events; failures are logged and swallowed (events are best effort)."""

    def __init__(self, client: aioredis.Redis, prefix: str = "genhub:") -> None:
        self._client = client
        self._prefix = prefix

    async def task_changed(self, task: task_pb2.Task) -> None:
        """Announce ``task``'s new state (status UNSPECIFIED announces its deletion)."""
        try:
            await self._client.publish(task_channel(self._prefix, task.task_id), snapshot(task))
        except (RedisError, OSError) as exc:
            log.warning("status event not published: %s", exc)
