"""RabbitMQ topology: every exchange, queue, routing key, priority and delay in one place.

Per provider ``p``::

    genhub.tasks  (direct) --p-->        genhub.tasks.p   classic, durable, x-max-priority=3
                                              | nack(requeue=False) after the last attempt
    genhub.dead   (direct) --p-->        genhub.dead.p    kept for operators to inspect/requeue
    genhub.delay  (direct) --p.<k>s-->   genhub.delay.p.<k>s  no consumers; expired messages
                                              dead-letter back to genhub.tasks with key p

One work queue per provider (not per task type): long video jobs use submit/poll and never
hold a worker slot while the provider renders, so slow and fast work share a queue without
head-of-line blocking. Three priority levels only: each level costs the broker an internal
sub-queue, and RabbitMQ advises few.

Delays (retries with backoff, polls of long jobs) use per-message TTLs in power-of-two buckets:
a bucket holds delays in [k, 2k) seconds, so a message waiting behind a longer one in the same
bucket is held at most twice its delay, and no broker plugin is needed.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from enum import StrEnum

import aio_pika
import aio_pika.exceptions
from aio_pika.abc import AbstractChannel, AbstractExchange
from aiormq.exceptions import AMQPError

from genhub.common.errors import BrokerError
from genhub.v1 import task_pb2

TASKS_EXCHANGE = "genhub.tasks"
DEAD_EXCHANGE = "genhub.dead"
DELAY_EXCHANGE = "genhub.delay"
MAX_PRIORITY = 3
PUBLISH_TIMEOUT = 5.0
_RNG = random.Random()
DELAY_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # seconds
# A provider asking for more than this (a quota reset tomorrow) is waited for this long at most;
# the next attempt then learns the new Retry-After.
MAX_RETRY_AFTER = 3600.0

_PRIORITY: dict[task_pb2.Priority.ValueType, int] = {
    task_pb2.PRIORITY_LOW: 1,
    task_pb2.PRIORITY_DEFAULT: 2,
    task_pb2.PRIORITY_UNSPECIFIED: 2,
    task_pb2.PRIORITY_CRITICAL: 3,
}


def work_queue(provider: str) -> str:
    """The priority queue a provider's workers consume."""
    return f"{TASKS_EXCHANGE}.{provider}"


def dead_queue(provider: str) -> str:
    """Where a provider's messages go after their last attempt."""
    return f"{DEAD_EXCHANGE}.{provider}"


def delay_queue(provider: str, bucket: int) -> str:
    """The holding queue for delays in [bucket, 2*bucket) seconds."""
    return f"{DELAY_EXCHANGE}.{provider}.{bucket}s"


def message_priority(priority: task_pb2.Priority.ValueType) -> int:
    """The AMQP message priority of a task priority."""
    return _PRIORITY.get(priority, 2)


def task_priority(amqp_priority: int | None) -> task_pb2.Priority.ValueType:
    """The task priority an AMQP message priority stands for (default when absent)."""
    for priority, level in _PRIORITY.items():
        if level == amqp_priority and priority != task_pb2.PRIORITY_UNSPECIFIED:
            return priority
    return task_pb2.PRIORITY_DEFAULT


def backoff_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 300.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    Exponential with "equal jitter" (half fixed, half random) so retries of a burst spread out,
    at most ``cap``; and never shorter than the provider's ``Retry-After`` (RFC 9110 §10.2.3),
    which is honoured in full up to ``MAX_RETRY_AFTER`` (the delay queues hold any delay).
    """
    exp = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = exp / 2 + (rng or _RNG).uniform(0, exp / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def delay_bucket(seconds: float) -> int:
    """The bucket (in seconds) that holds a delay."""
    if seconds < 2:
        return 1
    k = min(int(math.log2(seconds)), len(DELAY_BUCKETS) - 1)
    return DELAY_BUCKETS[k]


class MessageKind(StrEnum):
    """What a worker does with a message."""

    RUN = "run"  # start (or restart) the task
    POLL = "poll"  # check the provider's job of a long-running task


@dataclass(frozen=True)
class TaskMessage:
    """The body of a queue message: ids, never the prompt or a secret in clear.

    The worker claims the task from task-store, which returns it, so a message is small and a
    task deleted or cancelled while queued is simply skipped. Attempts are counted by task-store,
    not here.
    """

    task_id: str
    kind: MessageKind = MessageKind.RUN
    # POLL messages name the run that submitted the job: only that run may continue it.
    run_id: str = ""
    # Per-request provider credentials, encrypted (a Fernet token); never stored elsewhere.
    credentials: str = ""
    # How many times a worker handed this message back because task-store failed internally;
    # past a budget the message is dead-lettered instead of looping.
    handbacks: int = 0

    def encode(self) -> bytes:
        """The JSON body."""
        body: dict[str, object] = {"task_id": self.task_id, "kind": self.kind.value}
        if self.run_id:
            body["run_id"] = self.run_id
        if self.credentials:
            body["credentials"] = self.credentials
        if self.handbacks:
            body["handbacks"] = self.handbacks
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, body: bytes) -> TaskMessage:
        """Parse a body; raises ValueError when it is not one of ours."""
        try:
            data = json.loads(body)
            task_id = data["task_id"]
            if not isinstance(task_id, str) or not task_id:
                raise ValueError("task_id must be a non-empty string")
            return cls(
                task_id,
                MessageKind(data["kind"]),
                str(data.get("run_id", "")),
                str(data.get("credentials", "")),
                int(data.get("handbacks", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a task message: {exc}") from exc


async def declare(channel: AbstractChannel, provider: str) -> AbstractExchange:
    """Declare (idempotently) one provider's exchanges and queues; returns the tasks exchange."""
    tasks = await channel.declare_exchange(
        TASKS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dead = await channel.declare_exchange(DEAD_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    delay = await channel.declare_exchange(
        DELAY_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    work = await channel.declare_queue(
        work_queue(provider),
        durable=True,
        arguments={
            "x-queue-type": "classic",
            "x-max-priority": MAX_PRIORITY,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
            "x-dead-letter-routing-key": provider,
        },
    )
    await work.bind(tasks, routing_key=provider)
    dlq = await channel.declare_queue(dead_queue(provider), durable=True)
    await dlq.bind(dead, routing_key=provider)
    for bucket in DELAY_BUCKETS:
        held = await channel.declare_queue(
            delay_queue(provider, bucket),
            durable=True,
            arguments={
                "x-dead-letter-exchange": TASKS_EXCHANGE,
                "x-dead-letter-routing-key": provider,
            },
        )
        await held.bind(delay, routing_key=f"{provider}.{bucket}s")
    return tasks


async def publish(
    channel: AbstractChannel,
    provider: str,
    message: TaskMessage,
    *,
    priority: task_pb2.Priority.ValueType,
    delay: float = 0.0,
    dead: bool = False,
) -> None:
    """Publish a task message, persistent and confirmed by the broker.

    With ``delay`` the message waits in a delay bucket first; with ``dead`` it goes straight to
    the dead-letter queue. Raises BrokerError on a nack or when nothing is bound for the provider
    (``mandatory``), so the caller never believes a lost publish.
    """
    amqp_message = aio_pika.Message(
        message.encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message_priority(priority),
        message_id=f"{message.task_id}:{message.kind.value}",
        expiration=delay if delay > 0 and not dead else None,
    )
    if dead:
        name, key = DEAD_EXCHANGE, provider
    elif delay > 0:
        name, key = DELAY_EXCHANGE, f"{provider}.{delay_bucket(delay)}s"
    else:
        name, key = TASKS_EXCHANGE, provider
    try:
        exchange = await channel.get_exchange(name, ensure=False)
        # Bounded: while the broker is away a publish fails fast instead of hanging the caller.
        await exchange.publish(
            amqp_message, routing_key=key, mandatory=True, timeout=PUBLISH_TIMEOUT
        )
    except (
        AMQPError,
        aio_pika.exceptions.AMQPException,
        OSError,
        TimeoutError,
        RuntimeError,
    ) as exc:
        raise BrokerError(f"publish to {provider} not confirmed: {exc!r}") from exc
