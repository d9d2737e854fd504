"""``make soak``: a long mixed load, reporting the resident memory (RSS) of every GenHub service
once a minute, to catch what grows until it is killed (the anchor systems' proxies have open
reports of exactly that).

The services run as real processes (like ``make run``) on spare ports, in a fresh RabbitMQ vhost,
database and Redis prefix on the local infrastructure. For ``--minutes`` (30) this process keeps
a mixed load going at about ``--rate`` (3) new tasks a second:

- text tasks, most followed by GetTask, some over REST, some with WatchTask streams;
- image tasks answered synchronously (``wait``), video jobs (submit, then polls);
- failures: retried ones (``[fail:retryable:1]``) and permanent ones;
- cancels of slow tasks, and deletes of half of the finished tasks (the store stays small).

Every minute it prints and records each service's RSS and the task counts. After the warm-up
(``--warmup`` minutes, 5) the growth of each service's RSS from just after the warm-up to the
end of the run (each the median of five one-minute samples, so a sample taken while images
render is not mistaken for growth) must stay under ``--limit`` percent (5); the exit code says
whether it did.
Results: one table on stdout and JSON in ``.state/soak/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import socket
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf import duration_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devstack

from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

S = task_pb2
MANAGEMENT = "http://127.0.0.1:15672/api"
AUTH = ("guest", "guest")
RESULTS = Path(__file__).resolve().parent.parent / ".state" / "soak"
TERMINAL = {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELLED}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Mix:
    """One scenario per new task, chosen at random with fixed weights."""

    def __init__(self, stub: task_service_pb2_grpc.TaskServiceAsyncStub, rest: str) -> None:
        self.stub = stub
        self.http = httpx.AsyncClient(base_url=f"http://{rest}", timeout=30)
        self.counts: Counter[str] = Counter()
        self.rng = random.Random(7)

    async def _finish(self, task_id: str) -> task_pb2.Task:
        deadline = time.monotonic() + 120
        while True:
            got = await self.stub.GetTask(task_service_pb2.GetTaskRequest(task_id=task_id))
            if got.task.status in TERMINAL or time.monotonic() > deadline:
                return got.task
            await asyncio.sleep(0.5)

    async def _watch(self, task_id: str) -> task_pb2.Task:
        last = task_pb2.Task()
        stream = self.stub.WatchTask(task_service_pb2.WatchTaskRequest(task_id=task_id))
        async for change in stream:
            last = change.task
        return last

    def _text(self, prompt: str) -> task_service_pb2.CreateTextTaskRequest:
        return task_service_pb2.CreateTextTaskRequest(
            provider="demo", model="demo-text", text=S.TextSpec(prompt=prompt)
        )

    async def one(self, n: int) -> None:
        """Run one scenario to its end."""
        roll = self.rng.random()
        if roll < 0.45:
            kind, task = "text", (await self.stub.CreateTextTask(self._text(f"soak {n}"))).task
            done = await self._finish(task.task_id)
        elif roll < 0.55:
            kind, task = "rest", (await self.stub.CreateTextTask(self._text(f"rest {n}"))).task
            await asyncio.sleep(0.5)
            answer = await self.http.get(f"/api/v1/ai/task/result/{task.task_id}")
            answer.raise_for_status()
            done = await self._finish(task.task_id)
        elif roll < 0.70:
            kind, task = "watch", (await self.stub.CreateTextTask(self._text(f"watch {n}"))).task
            done = await self._watch(task.task_id)
        elif roll < 0.80:
            request = task_service_pb2.CreateImageTaskRequest(
                provider="demo",
                model="demo-image",
                image=S.ImageSpec(prompt=f"image {n}", size="256x256"),
                wait=duration_pb2.Duration(seconds=30),
            )
            kind, done = "image-wait", (await self.stub.CreateImageTask(request)).task
        elif roll < 0.85:
            request_video = task_service_pb2.CreateVideoTaskRequest(
                provider="demo",
                model="demo-video",
                video=S.VideoSpec(prompt=f"video {n}", duration_seconds=2, resolution="240p"),
            )
            task = (await self.stub.CreateVideoTask(request_video)).task
            kind, done = "video", await self._watch(task.task_id)
        elif roll < 0.92:
            directive = "[fail:retryable:1]" if roll < 0.89 else "[fail:permanent]"
            kind = "failure"
            task = (await self.stub.CreateTextTask(self._text(f"fail {n} {directive}"))).task
            done = await self._finish(task.task_id)
        else:
            kind = "cancel"
            task = (await self.stub.CreateTextTask(self._text(f"slow {n} [sleep:3000]"))).task
            await asyncio.sleep(0.5)
            with contextlib.suppress(grpc.aio.AioRpcError):  # it may have finished already
                await self.stub.CancelTask(task_service_pb2.CancelTaskRequest(task_id=task.task_id))
            done = await self._finish(task.task_id)
        self.counts[kind] += 1
        self.counts[task_pb2.TaskStatus.Name(done.status).removeprefix("TASK_STATUS_").lower()] += 1
        if done.status in TERMINAL and self.rng.random() < 0.5:
            await self.stub.DeleteTask(task_service_pb2.DeleteTaskRequest(task_id=done.task_id))
            self.counts["deleted"] += 1


async def _load(mix: Mix, rate: float, stop: asyncio.Event) -> None:
    running: set[asyncio.Task[None]] = set()
    limit = asyncio.Semaphore(200)
    n = 0

    async def scenario(i: int) -> None:
        async with limit:
            try:
                await mix.one(i)
            except (grpc.aio.AioRpcError, httpx.HTTPError) as exc:
                mix.counts["errors"] += 1
                print(f"  scenario {i}: {type(exc).__name__}: {exc}"[:200], file=sys.stderr)

    while not stop.is_set():
        task = asyncio.create_task(scenario(n))
        running.add(task)
        task.add_done_callback(running.discard)
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=mix.rng.expovariate(rate))
    await asyncio.gather(*running)


async def _vhost(name: str, create: bool) -> None:
    async with httpx.AsyncClient(base_url=MANAGEMENT, auth=AUTH, timeout=10) as client:
        if create:
            (await client.put(f"/vhosts/{name}")).raise_for_status()
            perms = {"configure": ".*", "write": ".*", "read": ".*"}
            (await client.put(f"/permissions/{name}/guest", json=perms)).raise_for_status()
        else:
            await client.delete(f"/vhosts/{name}")


def _growth(samples: list[dict[str, Any]], warmup: int) -> dict[str, dict[str, float]]:
    """Per service: RSS just after the warm-up and at the end, each the median of a few
    one-minute samples (up to five), so a sample taken mid-render does not pass for growth; a
    leak raises the floor and shows in both medians."""
    after = samples[warmup:]
    window = max(1, min(5, len(after) // 2))
    names = sorted(samples[-1]["rss_kib"])

    def median(name: str, chosen: list[dict[str, Any]]) -> float:
        return float(statistics.median(s["rss_kib"].get(name, 0) for s in chosen))

    found = {}
    for name in names:
        base, end = median(name, after[:window]), median(name, after[-window:])
        found[name] = {
            "after_warmup_mib": round(base / 1024, 1),
            "end_mib": round(end / 1024, 1),
            "peak_mib": round(max(s["rss_kib"].get(name, 0) for s in after) / 1024, 1),
            "growth_percent": round(100 * (end - base) / base, 2),
        }
    return found


async def soak(args: argparse.Namespace) -> int:
    """Run the soak; 0 when every service stayed under the growth limit."""
    name = "soak" + secrets.token_hex(4)
    env = dict(os.environ) | {
        "GENHUB_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{name}",
        "GENHUB_MONGO_DB": name,
        "GENHUB_EVENTS_PREFIX": f"{name}:",
        "GENHUB_LOG_LEVEL": "WARNING",
        "GENHUB_DEMO_VIDEO_RENDER_SECONDS": "2",
        "GENHUB_BACKOFF_BASE_SECONDS": "0.5",
    }
    await _vhost(name, create=True)
    samples: list[dict[str, Any]] = []
    try:
        async with devstack.running(
            env,
            gateway_port=_free_port(),
            taskstore_port=_free_port(),
            rest_port=_free_port(),
            demo_latency_ms=50,
        ) as stack:
            channel = grpc.aio.insecure_channel(stack.gateway)
            mix = Mix(task_service_pb2_grpc.TaskServiceStub(channel), stack.rest)
            stop = asyncio.Event()
            load = asyncio.create_task(_load(mix, args.rate, stop))
            started = time.monotonic()
            print(f"soak: {args.minutes} min at ~{args.rate} tasks/s; RSS in MiB", flush=True)
            for minute in range(args.minutes + 1):
                if minute:
                    await asyncio.sleep(max(0.0, started + 60 * minute - time.monotonic()))
                rss = {n: rss_kib(p.pid) for n, p in stack.processes.items()}
                sample = {"minute": minute, "rss_kib": rss, "counts": dict(mix.counts)}
                samples.append(sample)
                shown = "  ".join(f"{n} {v / 1024:6.1f}" for n, v in sorted(rss.items()))
                finished = sum(mix.counts[k] for k in ("succeeded", "failed", "cancelled"))
                print(
                    f"  min {minute:3d}  {shown}  finished {finished}"
                    f" errors {mix.counts['errors']}",
                    flush=True,
                )
            stop.set()
            await load
            await mix.http.aclose()
            await channel.close()
    finally:
        await _vhost(name, create=False)
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient("mongodb://127.0.0.1:27017/")
        await client.drop_database(name)
        await client.close()
    growth = _growth(samples, args.warmup)
    ok = all(g["growth_percent"] < args.limit for g in growth.values())
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "minutes": args.minutes,
        "rate_per_s": args.rate,
        "warmup_minutes": args.warmup,
        "limit_percent": args.limit,
        "growth": growth,
        "counts": dict(mix.counts),
        "samples": samples,
        "passed": ok,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nRSS growth after the {args.warmup}-minute warm-up (limit {args.limit}%):")
    for service, g in sorted(growth.items()):
        print(
            f"  {service:16s} {g['after_warmup_mib']:7.1f} -> {g['end_mib']:7.1f} MiB"
            f" (peak {g['peak_mib']:.1f})  {g['growth_percent']:+.2f}%"
        )
    print(f"tasks: {dict(mix.counts)}")
    print(f"{'PASSED' if ok else 'FAILED'}; details in {out}")
    return 0 if ok else 1


def main() -> None:
    """``make soak``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=30, help="how long (default 30)")
    parser.add_argument("--rate", type=float, default=3.0, help="new tasks per second (3)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up minutes (5)")
    parser.add_argument("--limit", type=float, default=5.0, help="allowed RSS growth, %% (5)")
    args = parser.parse_args()
    if args.warmup >= args.minutes:
        parser.error("--warmup must be shorter than --minutes")
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
