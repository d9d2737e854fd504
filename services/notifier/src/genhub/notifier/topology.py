"""The webhook queues (names from ``GENHUB_WEBHOOK_QUEUE``, default ``genhub.webhooks``)::

    <q>                 durable work queue; the notifier consumes it
    <q>.retry.<ms>ms    one per retry delay, x-message-ttl=<ms>, no consumers; expired messages
                        dead-letter back to <q> (default exchange). One TTL per queue, so the
                        head always expires first: no message waits behind a longer one.
    <q>.dead            events whose retries ran out, or that were refused; for operators

All publishes are persistent and confirmed; the schedule's delays are part of the queue names,
so a changed schedule declares new queues instead of clashing with the old arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

import aio_pika
import aio_pika.exceptions
from aio_pika.abc import AbstractChannel
from aiormq.exceptions import AMQPError

from genhub.common.errors import BrokerError
from genhub.notifier.events import WebhookEvent

PUBLISH_TIMEOUT = 5.0


def retry_queue(queue: str, delay: float) -> str:
    """The holding queue for one retry delay (seconds)."""
    return f"{queue}.retry.{round(delay * 1000)}ms"


def dead_queue(queue: str) -> str:
    """Where exhausted or refused events go."""
    return f"{queue}.dead"


async def declare(channel: AbstractChannel, queue: str, schedule: Sequence[float]) -> None:
    """Declare (idempotently) the work, retry and dead queues."""
    await channel.declare_queue(queue, durable=True)
    await channel.declare_queue(dead_queue(queue), durable=True)
    for delay in schedule:
        await channel.declare_queue(
            retry_queue(queue, delay),
            durable=True,
            arguments={
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue,
            },
        )


async def publish(channel: AbstractChannel, routing_key: str, event: WebhookEvent) -> None:
    """Publish ``event`` to queue ``routing_key``, persistent, confirmed, mandatory (so a
    missing queue raises instead of dropping it). Raises BrokerError."""
    message = aio_pika.Message(
        event.encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=f"{event.event_id}:{event.attempt}",
    )
    try:
        await channel.default_exchange.publish(
            message, routing_key=routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT
        )
    except (AMQPError, aio_pika.exceptions.AMQPException, OSError, TimeoutError) as exc:
        raise BrokerError(f"webhook event not confirmed by the broker: {exc!r}") from exc
