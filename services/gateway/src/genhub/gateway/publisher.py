"""Publishes task messages to RabbitMQ with publisher confirms."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq.exceptions import AMQPError

from genhub.common import topology
from genhub.common.errors import BrokerError
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)


class TaskPublisher:
    """One robust connection and confirmed channel; declares each provider's topology once."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open the connection and channel."""
        try:
            self._connection = await aio_pika.connect_robust(self._url, timeout=10)
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
        except (TimeoutError, AMQPError, OSError) as exc:
            raise BrokerError(f"RabbitMQ is unreachable: {exc}") from exc

    async def publish(
        self,
        provider: str,
        message: topology.TaskMessage,
        priority: task_pb2.Priority.ValueType,
    ) -> None:
        """Publish and wait for the broker's confirm; BrokerError if it is not confirmed."""
        if self._channel is None:
            raise BrokerError("publisher is not connected")
        try:
            if provider not in self._declared:
                async with self._lock:
                    if provider not in self._declared:
                        await topology.declare(self._channel, provider)
                        self._declared.add(provider)
            await topology.publish(self._channel, provider, message, priority=priority)
        except (TimeoutError, AMQPError, OSError, RuntimeError) as exc:
            raise BrokerError(f"publish to {provider} not confirmed: {exc}") from exc

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None
