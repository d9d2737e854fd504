"""Queue depth and consumers of every known provider's queues, as Prometheus gauges.

Task-store reports them because it always runs and knows every provider (workers declare
themselves to it): a provider whose workers are all gone still shows its queue, with no
consumers, which is what the GenHubNoConsumers alert needs. Each task-store replica reports the
same broker figures; alerts take the max. Counts come from a passive queue declare (AMQP
``Queue.DeclareOk``: ready messages and consumers), so no management API is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq.exceptions import AMQPError

from genhub.common import topology
from genhub.common.metrics import QUEUE_CONSUMERS, QUEUE_DEPTH

log = logging.getLogger(__name__)


class QueueMetrics:
    """Reads the work and dead-letter queue of each provider ``providers()`` names."""

    def __init__(self, url: str, providers: Callable[[], Awaitable[list[str]]]) -> None:
        self._url = url
        self._providers = providers
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def _open_channel(self) -> AbstractChannel:
        if self._connection is None:
            self._connection = await aio_pika.connect_robust(self._url, timeout=10)
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel()
        return self._channel

    async def observe(self) -> None:
        """Set the gauges once. A queue not declared yet is skipped (its provider's worker
        declares it); a broker failure is logged and retried at the next pass."""
        try:
            for provider in await self._providers():
                for queue in (topology.work_queue(provider), topology.dead_queue(provider)):
                    channel = await self._open_channel()
                    try:
                        declared = await channel.declare_queue(queue, passive=True)
                    except aio_pika.exceptions.ChannelClosed:
                        # 404: not declared yet; the broker closed the channel, reopen next.
                        continue
                    result = declared.declaration_result
                    QUEUE_DEPTH.labels(provider, queue).set(result.message_count or 0)
                    QUEUE_CONSUMERS.labels(provider, queue).set(result.consumer_count or 0)
        except (AMQPError, OSError, TimeoutError) as exc:
            log.warning("queue metrics not read: %s", exc)

    async def run_forever(self, interval: float) -> None:
        """``observe`` every ``interval`` seconds until cancelled."""
        while True:
            await self.observe()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None
