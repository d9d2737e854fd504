"""The one seam to the task queue: what publishers and consumers of task messages rely on.

Two implementations pass the same contract suite (``tests/contract/test_task_queue.py``):
:class:`~genhub.common.amqp_queue.AmqpTaskQueue` (RabbitMQ, production) and
:class:`~genhub.common.memory_queue.MemoryTaskQueue` (an in-process twin for fast policy tests).

The crash-ordering rule lives with the publisher, task-store's outbox: a task's intent to be
published is written with its state change, then published; so the queue only has to deliver
at least once. Consumers settle every delivery with a :class:`Verdict`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeAlias

from genhub.common.topology import TaskMessage
from genhub.v1 import task_pb2

Priority: TypeAlias = task_pb2.Priority.ValueType


class Action(Enum):
    """How a consumer settles a delivery."""

    ACK = "ack"  # done with it (finished, skipped, or its follow-up is already enqueued)
    REQUEUE = "requeue"  # hand it back now, marked redelivered (an infrastructure hiccup)
    DEFER = "defer"  # put a copy back after ``delay`` seconds, then ack this one
    DEAD_LETTER = "dead-letter"  # move it to the provider's dead-letter queue


@dataclass(frozen=True)
class Verdict:
    """A consumer's answer for one delivery; ``message`` replaces the body when deferring."""

    action: Action
    delay: float = 0.0
    message: TaskMessage | None = None


ACK = Verdict(Action.ACK)
REQUEUE = Verdict(Action.REQUEUE)
DEAD_LETTER = Verdict(Action.DEAD_LETTER)


@dataclass(frozen=True)
class Delivery:
    """One message handed to a consumer."""

    message: TaskMessage
    priority: Priority
    redelivered: bool  # the broker delivered it before and it was never settled


Handler = Callable[[Delivery], Awaitable[Verdict]]


class Subscription(Protocol):
    """A running consumer of one provider's work queue."""

    @property
    def in_flight(self) -> int:
        """Deliveries being handled now."""
        ...

    async def drain(self, grace: float) -> None:
        """Stop taking deliveries; give in-flight ones ``grace`` seconds, then cancel them
        (unsettled deliveries go back to the queue)."""
        ...


class TaskQueue(Protocol):
    """Per-provider priority queues with delays and a dead-letter queue."""

    async def enqueue(
        self, provider: str, message: TaskMessage, *, priority: Priority, delay: float = 0.0
    ) -> None:
        """Put ``message`` on ``provider``'s queue, after ``delay`` seconds if positive.

        Returns once the queue has durably accepted it. Raises BrokerError otherwise.
        """
        ...

    async def dead_letter(self, provider: str, message: TaskMessage, *, priority: Priority) -> None:
        """Put ``message`` straight into ``provider``'s dead-letter queue (BrokerError if not)."""
        ...

    async def consume(self, provider: str, handler: Handler, *, prefetch: int) -> Subscription:
        """Deliver ``provider``'s messages to ``handler``, at most ``prefetch`` at a time,
        highest priority first. An undecodable body is dead-lettered without reaching it."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...
