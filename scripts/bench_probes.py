"""What ``make bench`` reads while it drives GenHub: CPU seconds per process from ``/proc``,
task-store's Prometheus counters, and task status events from Redis (so the bench follows tasks
without listing them, and never reads a result document)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from genhub.common.events import task_channel
from genhub.v1 import task_pb2

TICKS = os.sysconf("SC_CLK_TCK")
# Infrastructure processes, found by their command line.
INFRA = {"rabbitmq": "beam.smp", "redis": "redis-server", "ferretdb": "ferretdb"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def infra_pids() -> dict[str, int]:
    """The infrastructure processes running on this machine, by name."""
    found: dict[str, int] = {}
    for name, pattern in INFRA.items():
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
        pids = [int(p) for p in out.split()]
        if pids:
            found[name] = min(pids)
    return found


class CpuMeter:
    """CPU seconds used by named processes between ``start`` and ``stop``."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        """Read the counters."""
        self._before = {n: cpu_seconds(p) for n, p in self._pids.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds each process used since ``start``."""
        self.used = {n: cpu_seconds(p) - self._before[n] for n, p in self._pids.items()}
        return self.used


async def scrape(url: str) -> dict[str, float]:
    """A /metrics page as {series with labels: value}."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(url)).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def total(values: Mapping[str, float], pattern: str) -> float:
    """The sum of every series whose name and labels match ``pattern`` (a regex)."""
    matcher = re.compile(pattern)
    return sum(v for k, v in values.items() if matcher.search(k))


class Tracker:
    """Follows task status events (Redis pub/sub) for every task of one event prefix."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._client = aioredis.Redis.from_url(redis_url)
        self._pattern = task_channel(prefix, "*")
        self.started: dict[str, task_pb2.Task] = {}
        self.finished: dict[str, task_pb2.Task] = {}
        self.seen_at: dict[str, float] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Tracker:
        pubsub = self._client.pubsub()
        await pubsub.psubscribe(self._pattern)
        self._reader = asyncio.create_task(self._read(pubsub))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._client.aclose()

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "pmessage":
                continue
            task = task_pb2.Task.FromString(message["data"])
            if task.status == task_pb2.TASK_STATUS_RUNNING and task.task_id not in self.started:
                self.started[task.task_id] = task
            elif task.status in (task_pb2.TASK_STATUS_SUCCEEDED, task_pb2.TASK_STATUS_FAILED):
                self.finished[task.task_id] = task
                self.seen_at[task.task_id] = time.perf_counter()

    async def wait(self, ids: Iterable[str], within: float) -> bool:
        """Wait until every task in ``ids`` finished; False on timeout."""
        wanted = set(ids)
        deadline = time.monotonic() + within
        while not wanted <= self.finished.keys():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def wait_started(self, ids: Iterable[str], within: float) -> bool:
        """Wait until every task in ``ids`` started; False on timeout."""
        wanted = set(ids)
        deadline = time.monotonic() + within
        while not wanted <= self.started.keys():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True
