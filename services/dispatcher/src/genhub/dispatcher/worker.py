"""The worker: a consumer of one provider's queue feeding the task handler.

The queue (``TaskQueue``) owns consuming, prefetch, acking and draining; the handler owns the
policy; hooks own metrics, logs and limits. This class only wires them and tracks in-flight work.
"""

from __future__ import annotations

import logging

from genhub.common.task_queue import Delivery, Subscription, TaskQueue, Verdict
from genhub.dispatcher.handler import TaskHandler
from genhub.dispatcher.metrics import CONCURRENCY, IN_FLIGHT

log = logging.getLogger(__name__)


class Worker:
    """Consumes ``provider``'s work queue with at most ``concurrency`` deliveries in flight."""

    def __init__(
        self, queue: TaskQueue, provider: str, handler: TaskHandler, concurrency: int
    ) -> None:
        self._queue = queue
        self._provider = provider
        self.handler = handler
        self._concurrency = concurrency
        self._subscription: Subscription | None = None
        self._in_flight = IN_FLIGHT.labels(provider)

    async def start(self) -> None:
        """Start consuming (prefetch = concurrency, so priorities keep working)."""
        CONCURRENCY.labels(self._provider).set(self._concurrency)
        self._subscription = await self._queue.consume(
            self._provider, self._handle, prefetch=self._concurrency
        )

    async def _handle(self, delivery: Delivery) -> Verdict:
        self._in_flight.inc()
        try:
            return await self.handler.handle(delivery)
        finally:
            self._in_flight.dec()

    @property
    def in_flight(self) -> int:
        """Deliveries being handled now."""
        return self._subscription.in_flight if self._subscription is not None else 0

    async def drain(self, grace: float) -> None:
        """Stop taking messages; give in-flight ones ``grace`` seconds, then hand them back."""
        if self._subscription is not None:
            await self._subscription.drain(grace)
            self._subscription = None
