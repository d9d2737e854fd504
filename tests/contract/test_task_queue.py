"""One contract, every TaskQueue: the in-memory twin and RabbitMQ (its own vhost per test)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import pytest

from genhub.common import topology
from genhub.common.amqp_queue import AmqpTaskQueue
from genhub.common.memory_queue import MemoryTaskQueue
from genhub.common.task_queue import ACK, DEAD_LETTER, REQUEUE, Action, Delivery, TaskQueue, Verdict
from genhub.common.topology import MessageKind, TaskMessage
from genhub.v1 import task_pb2
from tests.support import infra
from tests.support.waiting import eventually

P = "demo"
LOW, DEFAULT, CRITICAL = (
    task_pb2.PRIORITY_LOW,
    task_pb2.PRIORITY_DEFAULT,
    task_pb2.PRIORITY_CRITICAL,
)


@dataclass
class Backend:
    queue: TaskQueue
    dead_count: Callable[[], Awaitable[int]]
    ready_count: Callable[[], Awaitable[int]]
    put_raw: Callable[[bytes], Awaitable[None]]


@pytest.fixture(params=["memory", "rabbitmq"])
async def backend(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = MemoryTaskQueue()

        async def dead() -> int:
            return len(memory.dead(P))

        async def ready() -> int:
            return len(memory.ready(P))

        async def raw(body: bytes) -> None:
            memory.put_raw(P, body, DEFAULT)

        yield Backend(memory, dead, ready, raw)
        await memory.close()
        return
    infra.require_listening("RabbitMQ", 5672)
    await infra.create_vhost(unique)
    amqp = await AmqpTaskQueue.connect(infra.amqp_url(unique))
    connection = await aio_pika.connect(infra.amqp_url(unique))
    channel = await connection.channel()
    await topology.declare(channel, P)

    async def amqp_dead() -> int:
        return await infra.queue_depth(unique, topology.dead_queue(P))

    async def amqp_ready() -> int:
        return await infra.queue_depth(unique, topology.work_queue(P))

    async def amqp_raw(body: bytes) -> None:
        exchange = await channel.get_exchange(topology.TASKS_EXCHANGE)
        await exchange.publish(aio_pika.Message(body), routing_key=P)

    try:
        yield Backend(amqp, amqp_dead, amqp_ready, amqp_raw)
    finally:
        await amqp.close()
        await connection.close()
        await infra.delete_vhost(unique)


class Recorder:
    """A handler that records deliveries and answers with a scripted verdict."""

    def __init__(self, verdict: Callable[[Delivery], Verdict] = lambda d: ACK) -> None:
        self.seen: list[Delivery] = []
        self.at: list[float] = []
        self._verdict = verdict

    async def __call__(self, delivery: Delivery) -> Verdict:
        self.seen.append(delivery)
        self.at.append(time.monotonic())
        return self._verdict(delivery)

    async def wait_for(self, count: int) -> None:
        async def seen() -> int:
            return len(self.seen)

        await eventually(seen, lambda n: n >= count, timeout=15, what=f"{count} deliveries")


async def test_a_message_is_delivered_with_its_fields_and_acked(backend: Backend) -> None:
    message = TaskMessage("t1", MessageKind.POLL, "run-1", "sealed", handbacks=1)
    await backend.queue.enqueue(P, message, priority=CRITICAL)
    handler = Recorder()
    sub = await backend.queue.consume(P, handler, prefetch=4)
    await handler.wait_for(1)
    await sub.drain(5)
    (delivery,) = handler.seen
    assert delivery.message == message
    assert delivery.priority == CRITICAL
    assert not delivery.redelivered
    assert await backend.ready_count() == 0


async def test_higher_priorities_first_and_first_in_first_out_within_one(backend: Backend) -> None:
    order = [
        (LOW, "l1"),
        (DEFAULT, "d1"),
        (LOW, "l2"),
        (CRITICAL, "c1"),
        (DEFAULT, "d2"),
        (CRITICAL, "c2"),
    ]
    for priority, task_id in order:
        await backend.queue.enqueue(P, TaskMessage(task_id), priority=priority)
    handler = Recorder()
    sub = await backend.queue.consume(P, handler, prefetch=1)
    await handler.wait_for(len(order))
    await sub.drain(5)
    assert [d.message.task_id for d in handler.seen] == ["c1", "c2", "d1", "d2", "l1", "l2"]


async def test_a_delayed_message_arrives_no_sooner_than_its_delay(backend: Backend) -> None:
    handler = Recorder()
    sub = await backend.queue.consume(P, handler, prefetch=4)
    sent = time.monotonic()
    await backend.queue.enqueue(P, TaskMessage("later"), priority=DEFAULT, delay=1.0)
    await backend.queue.enqueue(P, TaskMessage("now"), priority=DEFAULT)
    await handler.wait_for(2)
    await sub.drain(5)
    assert [d.message.task_id for d in handler.seen] == ["now", "later"]
    assert handler.at[1] - sent >= 0.95


async def test_requeue_redelivers_marked_and_dead_letter_parks(backend: Backend) -> None:
    def verdict(d: Delivery) -> Verdict:
        if d.message.task_id == "bad":
            return DEAD_LETTER
        return ACK if d.redelivered else REQUEUE

    handler = Recorder(verdict)
    sub = await backend.queue.consume(P, handler, prefetch=4)
    await backend.queue.enqueue(P, TaskMessage("flaky"), priority=DEFAULT)
    await backend.queue.enqueue(P, TaskMessage("bad"), priority=DEFAULT)
    await handler.wait_for(3)
    await eventually(backend.dead_count, lambda n: n == 1, what="one dead letter")
    await sub.drain(5)
    flaky = [d.redelivered for d in handler.seen if d.message.task_id == "flaky"]
    assert flaky == [False, True]


async def test_defer_puts_the_replacement_back_after_the_delay(backend: Backend) -> None:
    def verdict(d: Delivery) -> Verdict:
        if d.message.handbacks == 0:
            return Verdict(Action.DEFER, 0.5, TaskMessage(d.message.task_id, handbacks=1))
        return ACK

    handler = Recorder(verdict)
    sub = await backend.queue.consume(P, handler, prefetch=4)
    await backend.queue.enqueue(P, TaskMessage("again"), priority=CRITICAL)
    await handler.wait_for(2)
    await sub.drain(5)
    _, second = handler.seen
    assert second.message.handbacks == 1 and second.priority == CRITICAL
    assert handler.at[1] - handler.at[0] >= 0.45


async def test_dead_letter_puts_straight_into_the_dead_letter_queue(backend: Backend) -> None:
    await backend.queue.dead_letter(P, TaskMessage("parked"), priority=DEFAULT)
    assert await eventually(backend.dead_count, lambda n: n == 1, what="one dead letter") == 1
    assert await backend.ready_count() == 0


async def test_a_poison_body_is_dead_lettered_without_reaching_the_handler(
    backend: Backend,
) -> None:
    await backend.put_raw(b"\x00not a task message")
    await backend.queue.enqueue(P, TaskMessage("fine"), priority=LOW)
    handler = Recorder()
    sub = await backend.queue.consume(P, handler, prefetch=1)
    await handler.wait_for(1)
    await eventually(backend.dead_count, lambda n: n == 1, what="the poison message parked")
    await sub.drain(5)
    assert [d.message.task_id for d in handler.seen] == ["fine"]


async def test_prefetch_bounds_deliveries_in_flight_and_drain_hands_them_back(
    backend: Backend,
) -> None:
    release = asyncio.Event()
    handler_seen: list[str] = []

    async def slow(d: Delivery) -> Verdict:
        handler_seen.append(d.message.task_id)
        await release.wait()
        return ACK

    for i in range(5):
        await backend.queue.enqueue(P, TaskMessage(f"t{i}"), priority=DEFAULT)
    sub = await backend.queue.consume(P, slow, prefetch=2)

    async def in_flight() -> int:
        return sub.in_flight

    await eventually(in_flight, lambda n: n == 2, what="two deliveries in flight")
    assert len(handler_seen) == 2
    # Draining with no grace cancels both: they go back to the queue, nothing is lost.
    await sub.drain(0)
    assert await eventually(backend.ready_count, lambda n: n == 5, what="all five back") == 5
    redelivered = Recorder()
    again = await backend.queue.consume(P, redelivered, prefetch=5)
    await redelivered.wait_for(5)
    await again.drain(5)
    assert sorted(d.message.task_id for d in redelivered.seen) == [f"t{i}" for i in range(5)]
    assert sum(d.redelivered for d in redelivered.seen) == 2
