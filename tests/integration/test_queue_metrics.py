"""task-store's queue gauges against the real RabbitMQ: ready messages and consumers of each
known provider's work and dead-letter queues; providers without queues yet are skipped."""

from __future__ import annotations

import aio_pika
import aio_pika.abc
from prometheus_client import REGISTRY

from genhub.common import topology
from genhub.taskstore.queue_metrics import QueueMetrics
from tests.support import infra
from tests.support.waiting import eventually


def gauge(name: str, provider: str, queue: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"provider": provider, "queue": queue})


async def test_depth_and_consumers_of_every_known_provider(vhost: str) -> None:
    work, dead = topology.work_queue("demo"), topology.dead_queue("demo")
    connection = await aio_pika.connect(infra.amqp_url(vhost))
    async with connection:
        channel = await connection.channel()
        await topology.declare(channel, "demo")
        for body in (b"one", b"two"):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=work)

        async def providers() -> list[str]:
            return ["ghost", "demo"]  # ghost's queues were never declared

        metrics = QueueMetrics(infra.amqp_url(vhost), providers)
        try:
            await metrics.observe()
            assert gauge("genhub_queue_depth", "demo", work) == 2
            assert gauge("genhub_queue_consumers", "demo", work) == 0
            assert gauge("genhub_queue_depth", "demo", dead) == 0
            assert gauge("genhub_queue_depth", "ghost", topology.work_queue("ghost")) is None

            consumer = await connection.channel()
            await consumer.set_qos(prefetch_count=1)
            queue = await consumer.get_queue(work)
            held: list[aio_pika.abc.AbstractIncomingMessage] = []

            async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                held.append(message)  # never acknowledged while the test runs

            await queue.consume(hold)

            async def observed() -> tuple[float | None, float | None]:
                await metrics.observe()
                return (
                    gauge("genhub_queue_consumers", "demo", work),
                    gauge("genhub_queue_depth", "demo", work),
                )

            # One consumer; one message ready, the other delivered to it and unacknowledged.
            await eventually(observed, lambda seen: seen == (1, 1), timeout=5, what="consumer")
        finally:
            await metrics.close()
