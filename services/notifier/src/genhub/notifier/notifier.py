"""``WebhookNotifier``: the producer side, called from the task lifecycle's status-change hook."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from genhub.notifier import events, topology
from genhub.notifier.config import DEFAULT_SCHEDULE
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)


class WebhookNotifier:
    """Turns status changes into queued webhook events.

    Delivery happens in the ``genhub-notifier`` process, never on the caller's stack: ``notify``
    only publishes (persistent, confirmed) to the durable queue. Use as an async context
    manager, or ``connect`` / ``close``.
    """

    def __init__(
        self,
        amqp_url: str,
        *,
        queue: str = "genhub.webhooks",
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
    ) -> None:
        self._url = amqp_url
        self._queue = queue
        self._schedule = list(schedule)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Connect and declare the queues (idempotent)."""
        async with self._lock:
            if self._channel is not None:
                return
            self._connection = await aio_pika.connect_robust(self._url)
            self._channel = await self._connection.channel(publisher_confirms=True)
            await topology.declare(self._channel, self._queue, self._schedule)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> WebhookNotifier:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def notify(self, task: task_pb2.Task) -> bool:
        """Enqueue the event for ``task``'s current status if its webhook wants it.

        Returns whether an event was enqueued. Raises ``genhub.common.errors.BrokerError`` when
        the broker does not confirm; the caller decides whether that fails its own step (for
        at-least-once delivery, call before acknowledging the lifecycle message).
        """
        if not events.wanted(task):
            return False
        await self.connect()
        assert self._channel is not None
        event = events.event_for(task)
        await topology.publish(self._channel, self._queue, event)
        log.info("webhook event queued", extra={"task_id": task.task_id, "event": event.type})
        return True
