"""``make bench``: GenHub's throughput, latency and cost per task on this machine, with the
demo provider at zero latency (so GenHub itself, not a model, is measured).

The services run as real processes (like ``make run``) on spare ports, in a fresh RabbitMQ vhost
and database; this process drives them over gRPC/REST and follows tasks through their status
events (Redis), never by listing result documents. It reads each GenHub and infrastructure
process's CPU seconds from ``/proc`` and task-store's own counts of calls and writes.

Figures are from one run, printed as one table and written as JSON to
``.state/bench/latest.json``, with the machine named. Scenarios:

- create latency one at a time, gRPC and REST alternating;
- closed loop: 32 callers create ``--tasks`` tasks; creates/s, completed/s, end to end, CPU ms
  per task per process, store calls and writes per task;
- open loop at fixed offered loads (25/50/100/200 tasks/s): create and end-to-end p50/p99, and
  whether GenHub keeps up;
- scaling with 1, 2 and 4 worker processes (task-store replicas: MongoDB only, see below);
- the queue wait of 10 critical tasks created behind a backlog of ``--backlog`` low ones;
- prefetch 4 versus 100 (why prefetch equals concurrency);
- prompt search over ``--search-rows`` stored tasks (``bench_search.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_probes
import bench_search
import devstack

from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

S = task_pb2
MANAGEMENT = "http://127.0.0.1:15672/api"
AUTH = ("guest", "guest")
REDIS = "redis://127.0.0.1:6379/0"
RESULTS = Path(__file__).resolve().parent.parent / ".state" / "bench"
STORE_METRICS_PORT = 9152
GENHUB = ("gateway", "taskstore", "dispatcher")
pct = bench_search.pct


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


def _request(prompt: str, priority: int = S.PRIORITY_DEFAULT) -> Any:
    return task_service_pb2.CreateTextTaskRequest(
        provider="demo",
        model="demo-text",
        text=S.TextSpec(prompt=prompt),
        user_id="bench",
        priority=priority,  # type: ignore[arg-type]
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 2)


def _e2e(tasks: Sequence[task_pb2.Task]) -> list[float]:
    return [(t.finish_time.ToNanoseconds() - t.create_time.ToNanoseconds()) / 1e9 for t in tasks]


class Bench:
    """One running stack (processes) and the probes on it."""

    def __init__(self, stack: devstack.DevStack, prefix: str) -> None:
        self.stack = stack
        self.prefix = prefix
        self.channel = grpc.aio.insecure_channel(stack.gateway)
        self.stub = task_service_pb2_grpc.TaskServiceStub(self.channel)

    def pids(self) -> dict[str, int]:
        named = {n: p.pid for n, p in self.stack.processes.items() if p.returncode is None}
        return named | bench_probes.infra_pids()

    async def create(self, prompt: str, priority: int = S.PRIORITY_DEFAULT) -> tuple[str, float]:
        started = time.perf_counter()
        task = (await self.stub.CreateTextTask(_request(prompt, priority))).task
        return task.task_id, time.perf_counter() - started

    async def store_counts(self) -> tuple[float, float]:
        """task-store's (RPCs handled, database writes) so far."""
        values = await bench_probes.scrape(f"http://127.0.0.1:{STORE_METRICS_PORT}/metrics")
        calls = bench_probes.total(
            values,
            r'^grpc_server_handled_total\{.*grpc_service="genhub\.store\.v1\.TaskStoreService"',
        )
        writes = bench_probes.total(values, r"^genhub_store_writes_total\{")
        return calls, writes


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


async def create_latency(bench: Bench, n: int) -> dict[str, float]:
    """The same creates, one at a time, over gRPC and REST alternating."""
    body = {"provider": "demo", "model": "demo-text", "text": {"prompt": "rest or grpc"}}
    grpc_times: list[float] = []
    rest_times: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://{bench.stack.rest}", timeout=30) as http:
        for _ in range(n):
            grpc_times.append((await bench.create("rest or grpc"))[1])
            started = time.perf_counter()
            response = await http.post("/api/v1/ai/text/task", json=body)
            rest_times.append(time.perf_counter() - started)
            response.raise_for_status()
    return {
        "create_p50_ms": _ms(pct(grpc_times, 50)),
        "create_p99_ms": _ms(pct(grpc_times, 99)),
        "rest_create_p50_ms": _ms(pct(rest_times, 50)),
        "rest_create_p99_ms": _ms(pct(rest_times, 99)),
    }


async def closed_loop(bench: Bench, n: int, parallel: int = 32) -> dict[str, Any]:
    """``parallel`` callers create ``n`` tasks as fast as they are answered; CPU and store
    counts from the first create to the last completion."""
    latencies: list[float] = []
    ids: list[str] = []

    def job(i: int) -> Callable[[], Awaitable[None]]:
        async def one() -> None:
            task_id, took = await bench.create(f"bench {i}")
            latencies.append(took)
            ids.append(task_id)

        return one

    meter = bench_probes.CpuMeter(bench.pids())
    calls0, writes0 = await bench.store_counts()
    async with bench_probes.Tracker(REDIS, bench.prefix) as tracker:
        meter.start()
        started = time.perf_counter()
        wall = await _bounded([job(i) for i in range(n)], parallel)
        complete = await tracker.wait(ids, within=600)
        done_at = max(tracker.seen_at[i] for i in ids if i in tracker.seen_at)
        used = meter.stop()
        finished = [tracker.finished[i] for i in ids if i in tracker.finished]
    calls1, writes1 = await bench.store_counts()
    cpu_ms = {name: round(sec * 1e3 / n, 2) for name, sec in sorted(used.items())}
    genhub = sum(v for k, v in cpu_ms.items() if k.startswith(GENHUB))
    e2e = _e2e(finished)
    return {
        "tasks": n,
        "all_finished": complete,
        "creates_per_s": round(n / wall, 1),
        "create_p50_ms_at_32": _ms(pct(latencies, 50)),
        "create_p99_ms_at_32": _ms(pct(latencies, 99)),
        "completed_per_s": round(len(finished) / (done_at - started), 1),
        "end_to_end_p50_ms": _ms(pct(e2e, 50)),
        "end_to_end_p99_ms": _ms(pct(e2e, 99)),
        "cpu_ms_per_task": cpu_ms,
        "genhub_cpu_ms_per_task": round(genhub, 2),
        "store_calls_per_task": round((calls1 - calls0) / n, 2),
        "store_writes_per_task": round((writes1 - writes0) / n, 2),
    }


async def open_loop(bench: Bench, rate: float, seconds: float) -> dict[str, Any]:
    """Creates at a fixed offered ``rate`` for ``seconds``, whatever the answers' latency."""
    latencies: list[float] = []
    ids: list[str] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        try:
            task_id, took = await bench.create(f"open {rate} {i}")
        except grpc.aio.AioRpcError:
            errors += 1
            return
        latencies.append(took)
        ids.append(task_id)

    async with bench_probes.Tracker(REDIS, bench.prefix) as tracker:
        jobs: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            # Sleep until this create is due: an open loop does not wait for answers.
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            jobs.append(asyncio.create_task(one(i)))
        await asyncio.gather(*jobs)
        offered_for = time.perf_counter() - started
        # Keeping up: everything created finishes within 5 s of the last create.
        kept_up = await tracker.wait(ids, within=5)
        await tracker.wait(ids, within=300)
        finished = [tracker.finished[i] for i in ids if i in tracker.finished]
    e2e = _e2e(finished)
    return {
        "offered_per_s": rate,
        "achieved_creates_per_s": round(len(ids) / offered_for, 1),
        "create_p50_ms": _ms(pct(latencies, 50)),
        "create_p99_ms": _ms(pct(latencies, 99)),
        "end_to_end_p50_ms": _ms(pct(e2e, 50)),
        "end_to_end_p99_ms": _ms(pct(e2e, 99)),
        "errors": errors,
        "keeps_up": kept_up and errors == 0,
    }


async def critical_behind_backlog(bench: Bench, backlog: int) -> dict[str, Any]:
    """With the worker stopped, create ``backlog`` low tasks; start a worker; once it is busy,
    create 10 critical tasks: their queue wait (created -> started)."""
    worker = bench.stack.processes.pop("dispatcher-demo")
    worker.send_signal(signal.SIGTERM)
    await worker.wait()
    low: list[str] = []

    def job(i: int) -> Callable[[], Awaitable[None]]:
        async def one() -> None:
            low.append((await bench.create(f"low {i}", S.PRIORITY_LOW))[0])

        return one

    await _bounded([job(i) for i in range(backlog)], 32)
    async with bench_probes.Tracker(REDIS, bench.prefix) as tracker:
        await bench.stack.add_worker("demo")
        await tracker.wait_started(low[:20], within=60)  # the worker is busy with the backlog
        critical = [
            (await bench.create(f"critical {i}", S.PRIORITY_CRITICAL))[0] for i in range(10)
        ]
        await tracker.wait_started(critical, within=120)
        waits = [
            (t.start_time.ToNanoseconds() - t.create_time.ToNanoseconds()) / 1e9
            for t in (tracker.started[c] for c in critical)
        ]
        pending = backlog - sum(1 for i in low if i in tracker.started)
    return {
        "backlog": backlog,
        "critical_wait_p50_ms": _ms(pct(waits, 50)),
        "critical_wait_p99_ms": _ms(pct(waits, 99)),
        "low_tasks_still_waiting": pending,
    }


async def _with_stack(name: str, workers: int, scenario: Callable[[Bench], Awaitable[Any]]) -> Any:
    env = dict(os.environ) | {
        "GENHUB_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{name}",
        "GENHUB_MONGO_DB": name,
        "GENHUB_EVENTS_PREFIX": f"{name}:",
        "GENHUB_LOG_LEVEL": "WARNING",
    }
    await _vhost(name, create=True)
    try:
        async with devstack.running(
            env,
            gateway_port=50151,
            taskstore_port=50152,
            rest_port=8180,
            workers=workers,
            taskstore_metrics_port=STORE_METRICS_PORT,
        ) as stack:
            bench = Bench(stack, f"{name}:")
            try:
                return await scenario(bench)
            finally:
                await bench.channel.close()
    finally:
        await _vhost(name, create=False)
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient("mongodb://127.0.0.1:27017/")
        await client.drop_database(name)
        await client.close()


def _table(results: dict[str, Any]) -> list[str]:
    c = results["closed_loop"]
    rows = [
        (
            "create over gRPC, one at a time",
            f"p50 {results['create_p50_ms']} ms, p99 {results['create_p99_ms']} ms",
        ),
        (
            "create over REST, one at a time",
            f"p50 {results['rest_create_p50_ms']} ms, p99 {results['rest_create_p99_ms']} ms",
        ),
        (
            "creates/s, 32 gRPC callers",
            f"{c['creates_per_s']} (latency p50 {c['create_p50_ms_at_32']} ms, "
            f"p99 {c['create_p99_ms_at_32']} ms)",
        ),
        (
            "completed/s, one worker (concurrency 4)",
            f"{c['completed_per_s']}; {c['tasks']} tasks, all finished: {c['all_finished']}",
        ),
        (
            "end to end under that load",
            f"p50 {c['end_to_end_p50_ms']} ms, p99 {c['end_to_end_p99_ms']} ms",
        ),
        (
            "GenHub CPU per task (gateway + task-store + dispatcher)",
            f"{c['genhub_cpu_ms_per_task']} ms",
        ),
        (
            "CPU per task, by process",
            ", ".join(f"{k} {v} ms" for k, v in c["cpu_ms_per_task"].items()),
        ),
        (
            "task-store calls / writes per task",
            f"{c['store_calls_per_task']} / {c['store_writes_per_task']}",
        ),
    ]
    for run in results.get("open_loop", []):
        rows.append(
            (
                f"open loop {run['offered_per_s']:.0f}/s offered",
                f"create p50 {run['create_p50_ms']} ms p99 {run['create_p99_ms']} ms; end to end "
                f"p50 {run['end_to_end_p50_ms']} ms p99 {run['end_to_end_p99_ms']} ms; "
                f"keeps up: {'yes' if run['keeps_up'] else 'no'}",
            )
        )
    for workers, figure in results.get("scaling", {}).items():
        rows.append(
            (
                f"completed/s with {workers} worker process(es)",
                f"{figure['completed_per_s']} (creates/s {figure['creates_per_s']})",
            )
        )
    if "taskstore_replicas" in results:
        rows.append(("2 task-store replicas", results["taskstore_replicas"]))
    if "critical" in results:
        k = results["critical"]
        rows.append(
            (
                f"10 critical behind {k['backlog']:,} low: queue wait",
                f"p50 {k['critical_wait_p50_ms']} ms, p99 {k['critical_wait_p99_ms']} ms "
                f"({k['low_tasks_still_waiting']:,} low still waiting)",
            )
        )
    width = max(len(r[0]) for r in rows)
    return [f"  {name.ljust(width)}  {value}" for name, value in rows]


async def main(args: argparse.Namespace) -> None:
    name = "bench" + secrets.token_hex(4)
    results: dict[str, Any] = {
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"GenHub benchmark - {results['machine']}")

    async def main_run(bench: Bench) -> None:
        results.update(await create_latency(bench, args.latency_samples))
        results["closed_loop"] = await closed_loop(bench, args.tasks)
        results["open_loop"] = [
            await open_loop(bench, rate, args.open_seconds) for rate in args.rates
        ]
        if args.backlog:
            results["critical"] = await critical_behind_backlog(bench, args.backlog)

    await _with_stack(name, 1, main_run)
    results["scaling"] = {}
    for workers in args.workers:
        loop = await _with_stack(
            f"{name}w{workers}", workers, lambda b: closed_loop(b, args.scaling_tasks)
        )
        results["scaling"][str(workers)] = {
            k: loop[k] for k in ("creates_per_s", "completed_per_s")
        }
    results["taskstore_replicas"] = (
        "not run: on FerretDB task-store serialises writes in-process (one replica); "
        "on MongoDB replicas share the work through its atomic compare-and-set"
    )
    results["creates_per_s"] = results["closed_loop"]["creates_per_s"]
    results["completed_per_s"] = results["closed_loop"]["completed_per_s"]
    results["cpu_ms_per_task"] = results["closed_loop"]["cpu_ms_per_task"]
    results["store_writes_per_task"] = results["closed_loop"]["store_writes_per_task"]
    results["store_calls_per_task"] = results["closed_loop"]["store_calls_per_task"]
    results["critical_wait_p99_ms"] = results.get("critical", {}).get("critical_wait_p99_ms")
    for line in _table(results):
        print(line)
    await _vhost(name, create=True)
    try:
        lines = await prefetch_effect(name, 200)
        if args.search_rows > 0:
            lines += await bench_search.search(args.search_rows, name)
    finally:
        await _vhost(name, create=False)
    results["notes"] = lines
    for line in lines:
        print(" ", line)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"written to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000, help="closed-loop tasks")
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--rates", type=float, nargs="*", default=[25, 50, 100, 200])
    parser.add_argument("--open-seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--scaling-tasks", type=int, default=1500)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument(
        "--search-rows", type=int, default=100_000, help="tasks to search (0: skip)"
    )
    asyncio.run(main(parser.parse_args()))
