"""What the fault tests share: a client that keeps creating tasks through an outage, and
checks of the queues and of the work done."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from genhub.common import topology
from genhub.v1 import task_pb2, task_service_pb2_grpc
from tests.support.call_log import count, read_calls
from tests.support.tasks import S, text_request, wait_status

# What a client may see while a service restarts: "try again", never a server bug.
CLEAR_ERRORS = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass
class Load:
    """Creates tasks one after another until stopped, each retried with its idempotency key
    until acknowledged (a client doing the right thing through an outage)."""

    tasks: task_service_pb2_grpc.TaskServiceAsyncStub
    label: str
    prompt: str = "[sleep:200]"
    pace: float = 0.1
    acknowledged: dict[str, task_pb2.Task] = field(default_factory=dict)
    errors: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _create(self, key: str) -> task_pb2.Task:
        request = text_request(f"{self.label} {key} {self.prompt}", idempotency_key=key)
        deadline = time.monotonic() + 90
        while True:
            try:
                response = await self.tasks.CreateTextTask(request, timeout=15)
                return response.task
            except grpc.aio.AioRpcError as exc:
                self.errors.append((exc.code(), exc.details() or ""))
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)  # a client's back-off before it tries again

    async def run(self) -> None:
        """Create until :meth:`stop` (the task in flight then finishes)."""
        index = 0
        while not self._stop.is_set():
            key = f"{self.label}-{index}"
            self.acknowledged[key] = await self._create(key)
            index += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.pace)

    async def created(self) -> int:
        """How many tasks were acknowledged so far (a probe for ``eventually``)."""
        return len(self.acknowledged)

    def stop(self) -> None:
        """Stop after the current create."""
        self._stop.set()

    def unclear_errors(self) -> list[tuple[grpc.StatusCode, str]]:
        """Errors that were not a clear "unavailable, try again" (there should be none)."""
        return [(code, text) for code, text in self.errors if code not in CLEAR_ERRORS or not text]


async def all_succeed(
    tasks: task_service_pb2_grpc.TaskServiceAsyncStub,
    task_ids: Iterable[str],
    timeout: float = 60,
) -> list[task_pb2.Task]:
    """Wait for every task to succeed; the finished tasks."""
    return [
        await wait_status(tasks, task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=timeout)
        for task_id in task_ids
    ]


def check_one_result_each(done: list[task_pb2.Task], log: Path) -> dict[str, int]:
    """Exactly one result per task (its own), and the provider calls behind them: each attempt
    made at most one call, at least one call returned, and no task's call returned twice
    unless a second attempt was made. Returns the calls started per task."""
    events = read_calls(log)
    ids = [t.task_id for t in done]
    started, ended = count(events, "start", ids), count(events, "end", ids)
    assert len(set(ids)) == len(ids)
    for task in done:
        assert task.status == S.TASK_STATUS_SUCCEEDED, task
        assert task.task_id in task.result.provider_request_id, task  # its own result
        assert 1 <= ended[task.task_id] <= started[task.task_id] <= task.attempts, (
            task.task_id,
            started[task.task_id],
            ended[task.task_id],
            task.attempts,
        )
    return dict(started)


async def waiting_messages(amqp_url: str, provider: str = "demo") -> dict[str, int]:
    """Messages waiting in ``provider``'s work queue, delay queues and dead-letter queue."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await topology.declare(channel, provider)
        found = {}
        names = [topology.work_queue(provider), topology.dead_queue(provider)]
        names += [topology.delay_queue(provider, b) for b in topology.DELAY_BUCKETS]
        for name in names:
            queue = await channel.declare_queue(name, passive=True)
            found[name] = int(queue.declaration_result.message_count or 0)
        return found


async def publish_raw(amqp_url: str, body: bytes, provider: str = "demo") -> None:
    """Put ``body`` on ``provider``'s work queue as it is (confirmed)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await topology.declare(channel, provider)
        exchange = await channel.get_exchange(topology.TASKS_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(body, priority=2, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=provider,
        )


async def metric(port: int, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` (with these labels) a process exports on ``port``."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
