"""``make bench``: throughput and latency of GenHub on this machine, with the demo provider.

Starts the services as real processes (like ``make run``) on spare ports, in a fresh RabbitMQ
vhost and MongoDB database, drives them from this process, and prints one table. Figures are
percentiles from one run; the machine is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aio_pika
import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devstack

from genhub.common import store_client
from genhub.store.v1 import task_store_pb2
from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

S = task_pb2
MANAGEMENT = "http://127.0.0.1:15672/api"
AUTH = ("guest", "guest")


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def machine() -> str:
    """A line naming the machine."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


async def _vhost(name: str, create: bool) -> None:
    async with httpx.AsyncClient(base_url=MANAGEMENT, auth=AUTH, timeout=10) as client:
        if create:
            (await client.put(f"/vhosts/{name}")).raise_for_status()
            perms = {"configure": ".*", "write": ".*", "read": ".*"}
            (await client.put(f"/permissions/{name}/guest", json=perms)).raise_for_status()
        else:
            await client.delete(f"/vhosts/{name}")


async def _bounded(jobs: Sequence[Callable[[], Awaitable[None]]], parallel: int) -> float:
    """Run ``jobs`` with at most ``parallel`` at once; returns wall seconds."""
    gate = asyncio.Semaphore(parallel)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    started = time.perf_counter()
    await asyncio.gather(*(one(j) for j in jobs))
    return time.perf_counter() - started


async def _all_finished(
    store: store_client.TaskStoreClient, ids: set[str], limit: float
) -> list[task_pb2.Task]:
    deadline = time.monotonic() + limit
    while True:
        finished: list[task_pb2.Task] = []
        token = ""
        while True:
            page = await store.list_tasks(
                task_store_pb2.ListTasksRequest(
                    statuses=[S.TASK_STATUS_SUCCEEDED], page_size=1000, page_token=token
                )
            )
            finished += [t for t in page.tasks if t.task_id in ids]
            token = page.next_page_token
            if not token:
                break
        if len(finished) >= len(ids) or time.monotonic() > deadline:
            return finished
        await asyncio.sleep(0.5)


async def lifecycle(
    stub: task_service_pb2_grpc.TaskServiceAsyncStub,
    store: store_client.TaskStoreClient,
    n: int,
    parallel: int,
) -> list[str]:
    """Create ``n`` text tasks and follow them to succeeded."""
    latencies: list[float] = []
    ids: set[str] = set()

    def job(i: int) -> Callable[[], Awaitable[None]]:
        async def create() -> None:
            started = time.perf_counter()
            task = (
                await stub.CreateTextTask(
                    task_service_pb2.CreateTextTaskRequest(
                        provider="demo",
                        model="demo-text",
                        text=S.TextSpec(prompt=f"bench {i}"),
                        user_id="bench",
                    )
                )
            ).task
            latencies.append(time.perf_counter() - started)
            ids.add(task.task_id)

        return create

    wall = await _bounded([job(i) for i in range(n)], parallel)
    finished = await _all_finished(store, ids, limit=300)
    e2e = [(t.finish_time.ToNanoseconds() - t.create_time.ToNanoseconds()) / 1e9 for t in finished]
    first = min(t.create_time.ToNanoseconds() for t in finished)
    last = max(t.finish_time.ToNanoseconds() for t in finished)
    return [
        f"gRPC create: {n / wall:,.0f} tasks/s ({parallel} concurrent callers); "
        f"latency p50 {pct(latencies, 50) * 1e3:.1f} ms, p99 {pct(latencies, 99) * 1e3:.1f} ms",
        f"end to end (create -> succeeded, server clocks): p50 {pct(e2e, 50) * 1e3:.0f} ms, "
        f"p99 {pct(e2e, 99) * 1e3:.0f} ms; {len(finished)}/{n} succeeded",
        f"completed: {len(finished) / ((last - first) / 1e9):,.0f} tasks/s "
        "(one demo worker, concurrency 4)",
    ]


async def priority(
    stub: task_service_pb2_grpc.TaskServiceAsyncStub,
    store: store_client.TaskStoreClient,
    backlog: int,
) -> list[str]:
    """Queue wait of critical tasks created behind a backlog of low ones."""
    low_ids: set[str] = set()
    critical_ids: set[str] = set()

    async def create(prompt: str, level: task_pb2.Priority.ValueType, into: set[str]) -> None:
        task = (
            await stub.CreateTextTask(
                task_service_pb2.CreateTextTaskRequest(
                    provider="demo",
                    model="demo-text",
                    text=S.TextSpec(prompt=prompt),
                    priority=level,
                )
            )
        ).task
        into.add(task.task_id)

    def low_job(i: int) -> Callable[[], Awaitable[None]]:
        return lambda: create(f"low {i}", S.PRIORITY_LOW, low_ids)

    await _bounded([low_job(i) for i in range(backlog)], 32)
    for i in range(10):
        await create(f"critical {i}", S.PRIORITY_CRITICAL, critical_ids)
    done = await _all_finished(store, low_ids | critical_ids, limit=300)

    def wait(t: task_pb2.Task) -> float:
        return (t.start_time.ToNanoseconds() - t.create_time.ToNanoseconds()) / 1e9

    crit = [wait(t) for t in done if t.task_id in critical_ids]
    low = [wait(t) for t in done if t.task_id in low_ids]
    return [
        f"priority: 10 critical tasks behind {backlog} low ones waited "
        f"p50 {pct(crit, 50) * 1e3:.0f} ms, max {max(crit) * 1e3:.0f} ms; "
        f"the low ones p50 {pct(low, 50) * 1e3:.0f} ms, max {max(low) * 1e3:.0f} ms",
    ]


async def prefetch_effect(vhost: str, backlog: int) -> list[str]:
    """How many low messages reach a consumer before a critical one, by prefetch.

    The consumer takes 2 ms per message; the critical message is published once the consumer
    is busy. Whatever the prefetch window already holds cannot be overtaken.
    """
    lines = []
    for prefetch in (4, 100):
        connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=prefetch)
            queue = await channel.declare_queue(
                f"prefetch-{prefetch}", arguments={"x-max-priority": 3}, auto_delete=True
            )
            for _ in range(backlog):
                await channel.default_exchange.publish(
                    aio_pika.Message(b"low", priority=1), routing_key=queue.name
                )
            order: list[bytes] = []
            busy = asyncio.Event()
            finished = asyncio.Event()

            async def consume(
                message: aio_pika.abc.AbstractIncomingMessage,
                order: list[bytes] = order,
                busy: asyncio.Event = busy,
                finished: asyncio.Event = finished,
            ) -> None:
                order.append(message.body)
                busy.set()
                await asyncio.sleep(0.002)  # 2 ms of "work"
                await message.ack()
                if message.body == b"critical":
                    finished.set()

            tag = await queue.consume(consume)
            await busy.wait()
            await channel.default_exchange.publish(
                aio_pika.Message(b"critical", priority=3), routing_key=queue.name
            )
            await finished.wait()
            await queue.cancel(tag)
            before = order.index(b"critical")
            lines.append(
                f"prefetch {prefetch}: {before} low messages were handled before the critical one"
            )
    return lines


async def main(n: int, backlog: int) -> None:
    name = "bench" + secrets.token_hex(4)
    await _vhost(name, create=True)
    env = dict(os.environ) | {
        "GENHUB_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{name}",
        "GENHUB_MONGO_DB": name,
        "GENHUB_EVENTS_PREFIX": f"{name}:",
        "GENHUB_LOG_LEVEL": "WARNING",
    }
    print(f"GenHub benchmark - {machine()}")
    try:
        async with (
            devstack.running(
                env, gateway_port=50151, taskstore_port=50152, rest_port=8180
            ) as stack,
            grpc.aio.insecure_channel(stack.gateway) as channel,
            store_client.connect(stack.taskstore) as store,
        ):
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            for line in await lifecycle(stub, store, n, parallel=32):
                print(" ", line)
            for line in await priority(stub, store, backlog):
                print(" ", line)
        for line in await prefetch_effect(name, 200):
            print(" ", line)
    finally:
        await _vhost(name, create=False)
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient("mongodb://127.0.0.1:27017/")
        await client.drop_database(name)
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.backlog))
