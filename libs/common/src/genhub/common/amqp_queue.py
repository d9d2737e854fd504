"""The task queue on RabbitMQ (aio-pika): the topology of ``topology.py``, publisher confirms,
prefetch-bounded consumers that settle each delivery with the handler's verdict."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.exceptions import AMQPError

from genhub.common import topology
from genhub.common.errors import BrokerError
from genhub.common.task_queue import Action, Delivery, Handler, Priority, Verdict
from genhub.common.topology import TaskMessage

log = logging.getLogger(__name__)
# Pause before handing back a delivery whose handler crashed, so a bug is not a hot loop.
HANDBACK_PAUSE_SECONDS = 1.0


class AmqpTaskQueue:
    """One robust connection; a confirmed channel for publishing, one channel per consumer."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, url: str) -> AmqpTaskQueue:
        """Connect to ``url``; BrokerError when RabbitMQ is unreachable."""
        try:
            connection = await aio_pika.connect_robust(url, timeout=10)
        except (TimeoutError, AMQPError, OSError) as exc:
            raise BrokerError(f"RabbitMQ is unreachable: {exc}") from exc
        return cls(connection)

    async def _publishing_channel(self, provider: str) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
                self._declared.clear()
            if provider not in self._declared:
                await topology.declare(self._channel, provider)
                self._declared.add(provider)
            return self._channel

    async def _publish(
        self, provider: str, message: TaskMessage, priority: Priority, delay: float, dead: bool
    ) -> None:
        try:
            channel = await self._publishing_channel(provider)
        except (
            TimeoutError,
            AMQPError,
            aio_pika.exceptions.AMQPException,
            OSError,
            RuntimeError,  # aio-pika: "Connection was not opened" while reconnecting
        ) as exc:
            raise BrokerError(f"RabbitMQ channel unavailable: {exc!r}") from exc
        await topology.publish(
            channel, provider, message, priority=priority, delay=delay, dead=dead
        )

    async def enqueue(
        self, provider: str, message: TaskMessage, *, priority: Priority, delay: float = 0.0
    ) -> None:
        """Publish with a broker confirm (see TaskQueue.enqueue)."""
        await self._publish(provider, message, priority, delay, dead=False)

    async def dead_letter(self, provider: str, message: TaskMessage, *, priority: Priority) -> None:
        """Publish straight into the dead-letter queue (see TaskQueue.dead_letter)."""
        await self._publish(provider, message, priority, 0.0, dead=True)

    async def consume(self, provider: str, handler: Handler, *, prefetch: int) -> AmqpSubscription:
        """Consume ``provider``'s work queue (see TaskQueue.consume)."""
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        await topology.declare(channel, provider)
        queue = await channel.get_queue(topology.work_queue(provider))
        subscription = AmqpSubscription(self, provider, channel, queue, handler)
        await subscription.start()
        return subscription

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._connection.close()


class AmqpSubscription:
    """A consumer: one asyncio task per delivery, each settled once by its verdict."""

    def __init__(
        self,
        queue: AmqpTaskQueue,
        provider: str,
        channel: AbstractChannel,
        amqp_queue: AbstractQueue,
        handler: Handler,
    ) -> None:
        self._queue = queue
        self._provider = provider
        self._channel = channel
        self._amqp_queue = amqp_queue
        self._handler = handler
        self._tag: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Deliveries being handled now."""
        return len(self._tasks)

    async def start(self) -> None:
        """Start taking deliveries."""
        self._tag = await self._amqp_queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._deliver(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, amqp: AbstractIncomingMessage) -> None:
        try:
            message = TaskMessage.decode(amqp.body)
        except ValueError as exc:
            # A poison body: park it for operators instead of blocking the queue.
            log.error("unreadable message dead-lettered: %s", exc)
            await amqp.reject(requeue=False)
            return
        delivery = Delivery(message, topology.task_priority(amqp.priority), bool(amqp.redelivered))
        try:
            verdict = await self._handler(delivery)
        except asyncio.CancelledError:
            raise  # draining: unsettled, the delivery returns to the queue with the channel
        except Exception:
            log.exception("handler failed; message handed back", extra={"task_id": message.task_id})
            await asyncio.sleep(HANDBACK_PAUSE_SECONDS)
            verdict = Verdict(Action.REQUEUE)
        await self._settle(amqp, delivery, verdict)

    async def _settle(
        self, amqp: AbstractIncomingMessage, delivery: Delivery, verdict: Verdict
    ) -> None:
        if verdict.action is Action.ACK:
            await amqp.ack()
        elif verdict.action is Action.DEAD_LETTER:
            await amqp.reject(requeue=False)  # the work queue dead-letters into genhub.dead.<p>
        elif verdict.action is Action.REQUEUE:
            await amqp.nack(requeue=True)
        else:
            # Defer: the copy is confirmed before the original is acked, so a crash in between
            # leaves a duplicate (harmless: only one delivery can claim a run), never nothing.
            try:
                await self._queue.enqueue(
                    self._provider,
                    verdict.message or delivery.message,
                    priority=delivery.priority,
                    delay=verdict.delay,
                )
            except BrokerError as exc:
                log.warning("deferral not published, message handed back: %s", exc)
                await amqp.nack(requeue=True)
                return
            await amqp.ack()

    async def drain(self, grace: float) -> None:
        """Stop consuming; wait ``grace`` seconds for in-flight deliveries, then cancel them."""
        if self._tag is not None:
            with contextlib.suppress(AMQPError, aio_pika.exceptions.AMQPException, OSError):
                await self._amqp_queue.cancel(self._tag)
            self._tag = None
        if self._tasks:
            log.info("draining %d in-flight deliveries", len(self._tasks))
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        with contextlib.suppress(AMQPError, aio_pika.exceptions.AMQPException, OSError):
            await self._channel.close()
