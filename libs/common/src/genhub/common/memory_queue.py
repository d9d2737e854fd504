"""An in-process twin of the task queue, for fast tests of worker and lifecycle policy.

It keeps RabbitMQ's observable behaviour that GenHub relies on: highest priority first and FIFO
within a priority, delays, at most ``prefetch`` unsettled deliveries per consumer, redelivery
(marked) of what was handed back or left unsettled, dead-lettering, and bodies decoded on
delivery (so a poison body is dead-lettered). It passes the same contract suite as
:class:`~genhub.common.amqp_queue.AmqpTaskQueue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from dataclasses import dataclass, field

from genhub.common import topology
from genhub.common.errors import BrokerError
from genhub.common.task_queue import Action, Delivery, Handler, Priority, Verdict
from genhub.common.topology import TaskMessage

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Entry:
    rank: tuple[int, int]  # (-AMQP priority, arrival order)
    body: bytes = field(compare=False)
    priority: Priority = field(compare=False)
    redelivered: bool = field(default=False, compare=False)


class _ProviderQueue:
    def __init__(self) -> None:
        self.ready: list[_Entry] = []
        self.dead: list[bytes] = []
        self.changed = asyncio.Event()


class MemoryTaskQueue:
    """Per-provider priority queues in memory (one event loop)."""

    def __init__(self) -> None:
        self._queues: dict[str, _ProviderQueue] = {}
        self._order = itertools.count()
        self._timers: set[asyncio.TimerHandle] = set()
        self.available = True  # tests flip it to simulate a broker outage

    def _q(self, provider: str) -> _ProviderQueue:
        return self._queues.setdefault(provider, _ProviderQueue())

    def _put(self, provider: str, body: bytes, priority: Priority, redelivered: bool) -> None:
        q = self._q(provider)
        level = topology.message_priority(priority)
        heapq.heappush(q.ready, _Entry((-level, next(self._order)), body, priority, redelivered))
        q.changed.set()

    def put_raw(self, provider: str, body: bytes, priority: Priority) -> None:
        """Enqueue an arbitrary body (tests: a poison message)."""
        self._put(provider, body, priority, redelivered=False)

    async def enqueue(
        self, provider: str, message: TaskMessage, *, priority: Priority, delay: float = 0.0
    ) -> None:
        """See TaskQueue.enqueue."""
        if not self.available:
            raise BrokerError("memory queue unavailable")
        body = message.encode()
        if delay <= 0:
            self._put(provider, body, priority, redelivered=False)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def due() -> None:
            assert handle is not None
            self._timers.discard(handle)
            self._put(provider, body, priority, redelivered=False)

        handle = loop.call_later(delay, due)
        self._timers.add(handle)

    async def dead_letter(self, provider: str, message: TaskMessage, *, priority: Priority) -> None:
        """See TaskQueue.dead_letter."""
        if not self.available:
            raise BrokerError("memory queue unavailable")
        self._q(provider).dead.append(message.encode())

    def ready(self, provider: str) -> list[TaskMessage]:
        """Messages waiting now, in delivery order (tests)."""
        return [TaskMessage.decode(e.body) for e in sorted(self._q(provider).ready)]

    def dead(self, provider: str) -> list[bytes]:
        """Bodies in the dead-letter queue (tests)."""
        return list(self._q(provider).dead)

    @property
    def delayed(self) -> int:
        """Messages still waiting out a delay (tests)."""
        return len(self._timers)

    async def consume(
        self, provider: str, handler: Handler, *, prefetch: int
    ) -> MemorySubscription:
        """See TaskQueue.consume."""
        subscription = MemorySubscription(self, provider, self._q(provider), handler, prefetch)
        subscription.start()
        return subscription

    async def close(self) -> None:
        """Cancel pending delays (idempotent)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()


class MemorySubscription:
    """Pulls up to ``prefetch`` deliveries at a time and settles each by its verdict."""

    def __init__(
        self,
        owner: MemoryTaskQueue,
        provider: str,
        queue: _ProviderQueue,
        handler: Handler,
        prefetch: int,
    ) -> None:
        self._owner = owner
        self._provider = provider
        self._queue = queue
        self._handler = handler
        self._prefetch = prefetch
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(prefetch)
        self._pump: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """Deliveries being handled now."""
        return len(self._tasks)

    def start(self) -> None:
        """Start the pump."""
        self._pump = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()
            while not self._queue.ready:
                self._queue.changed.clear()
                await self._queue.changed.wait()
            entry = heapq.heappop(self._queue.ready)
            task = asyncio.create_task(self._deliver(entry))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _deliver(self, entry: _Entry) -> None:
        try:
            message = TaskMessage.decode(entry.body)
        except ValueError as exc:
            log.error("unreadable message dead-lettered: %s", exc)
            self._queue.dead.append(entry.body)
            return
        delivery = Delivery(message, entry.priority, entry.redelivered)
        try:
            verdict = await self._handler(delivery)
        except asyncio.CancelledError:
            self._owner._put(self._provider, entry.body, entry.priority, redelivered=True)
            raise
        except Exception:
            log.exception("handler failed; message handed back")
            verdict = Verdict(Action.REQUEUE)
        if verdict.action is Action.REQUEUE:
            self._owner._put(self._provider, entry.body, entry.priority, redelivered=True)
        elif verdict.action is Action.DEAD_LETTER:
            self._queue.dead.append(entry.body)
        elif verdict.action is Action.DEFER:
            try:
                await self._owner.enqueue(
                    self._provider,
                    verdict.message or message,
                    priority=entry.priority,
                    delay=verdict.delay,
                )
            except BrokerError:
                self._owner._put(self._provider, entry.body, entry.priority, redelivered=True)

    async def drain(self, grace: float) -> None:
        """See Subscription.drain."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
