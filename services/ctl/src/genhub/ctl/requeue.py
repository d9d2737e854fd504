"""``genhubctl dlq requeue``: what "requeue" means for each dead letter, decided by its task.

A dead letter is a task's message (ids only); what an operator expects depends on the task:

===================== =============================================================== =========
task                  what happens                                                    counted
===================== =============================================================== =========
failed                RetryTask (public API): queued again with a fresh attempt        retried
                      budget; task-store publishes its new message; the letter goes
queued, running       the letter is published again (with its sealed credentials, if  requeued
                      any) to the queue of the provider serving the task
succeeded, cancelled, nothing to do: the letter goes                                   dropped
expired, deleted
ran with its request's RetryTask refuses (the credentials were never stored): kept     kept
own credentials; an
undecodable body
===================== =============================================================== =========

Each letter is settled only after its outcome is confirmed (a retry answered, a publish
confirmed by the broker); kept letters go back to the dead-letter queue at the end. A failure
midway exits with the error, and every letter not yet settled returns to the queue with the
connection, so nothing is lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import aio_pika
import grpc
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from genhub.common import topology
from genhub.common.topology import TaskMessage
from genhub.ctl.context import Ctl
from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

OUTCOMES = ("retried", "requeued", "dropped", "kept")
_ACTIVE = {task_pb2.TASK_STATUS_PENDING, task_pb2.TASK_STATUS_QUEUED, task_pb2.TASK_STATUS_RUNNING}


class _Requeuer:
    def __init__(
        self, c: Ctl, stub: task_service_pb2_grpc.TaskServiceAsyncStub, exchange: AbstractExchange
    ) -> None:
        self._c = c
        self._stub = stub
        self._exchange = exchange

    async def outcome(self, provider: str, letter: AbstractIncomingMessage) -> str:
        try:
            message = TaskMessage.decode(letter.body)
        except ValueError:
            return "kept"
        try:
            request = task_service_pb2.GetTaskRequest(task_id=message.task_id)
            task = (await self._stub.GetTask(request, metadata=self._c.metadata)).task
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return "dropped"
            raise
        if task.status == task_pb2.TASK_STATUS_FAILED:
            try:
                retry = task_service_pb2.RetryTaskRequest(task_id=task.task_id)
                await self._stub.RetryTask(retry, metadata=self._c.metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    return "kept"
                raise
            return "retried"
        if task.status in _ACTIVE:
            await self._exchange.publish(
                aio_pika.Message(
                    letter.body,
                    content_type=letter.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    priority=letter.priority,
                    message_id=letter.message_id,
                ),
                routing_key=task.served_by.provider or provider,
                mandatory=True,
            )
            return "requeued"
        return "dropped"


async def requeue_dead_letters(
    c: Ctl, provider: str, limit: int, advance: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Settle up to ``limit`` (0: all) of ``provider``'s dead letters as the table above says;
    returns the count of each outcome. ``advance(total)`` is called once per letter."""
    counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
    connection = await aio_pika.connect(c.amqp_url)
    async with connection, c.channel() as grpc_channel:
        stub: task_service_pb2_grpc.TaskServiceAsyncStub = task_service_pb2_grpc.TaskServiceStub(
            grpc_channel
        )
        channel = await connection.channel(publisher_confirms=True)
        await topology.declare(channel, provider)
        dead = await channel.declare_queue(topology.dead_queue(provider), passive=True)
        total = dead.declaration_result.message_count or 0
        if limit:
            total = min(total, limit)
        requeuer = _Requeuer(c, stub, await channel.get_exchange(topology.TASKS_EXCHANGE))
        kept: list[AbstractIncomingMessage] = []
        for _ in range(total):
            letter = await dead.get(no_ack=False, fail=False)
            if letter is None:
                break
            outcome = await requeuer.outcome(provider, letter)
            counts[outcome] += 1
            if outcome == "kept":
                kept.append(letter)  # held unsettled, so the next get returns the next letter
            else:
                await letter.ack()
            if advance is not None:
                advance(total)
        for letter in kept:
            await letter.nack(requeue=True)
    return dict(counts)
