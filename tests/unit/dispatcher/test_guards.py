"""Worker guards over the twins: provider limits shared by several workers (a message waits
unclaimed, never spending an attempt; slots come back at every end of a run) and circuit
breakers (fail fast, re-route to a fallback, probe and close), in-process and fast."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from genhub.common.breaker import BreakerPolicy, BreakerState, MemoryBreaker
from genhub.common.memory_queue import MemoryTaskQueue
from genhub.common.provider_limits import ProviderLimiter, ProviderLimits
from genhub.common.ratelimit import MemoryLimiter
from genhub.common.task_queue import Delivery
from genhub.common.topology import TaskMessage
from genhub.dispatcher.breaker_hook import CIRCUIT_OPEN, BreakerHook
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.credentials import ConfigWatcher
from genhub.dispatcher.handler import TaskHandler
from genhub.dispatcher.hooks import Hooks, Run, WorkerHook
from genhub.dispatcher.limit_hook import ProviderLimitHook
from genhub.dispatcher.worker import Worker
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import (
    AuthFailed,
    Call,
    CallConfig,
)
from genhub.taskstore.memory_task_repository import MemoryTaskRepository
from genhub.taskstore.operations import Lifecycle
from genhub.taskstore.outbox import Outbox
from genhub.v1 import task_pb2
from tests.support.providers import Gauge, GaugedDemo
from tests.support.waiting import eventually
from tests.unit.dispatcher.test_handler import NoStoredConfig

S = task_pb2
TERMINAL = {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELLED}


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


class World:
    """One store and queue; workers of several providers sharing one limiter and breaker."""

    def __init__(self, limits: ProviderLimits, policy: BreakerPolicy | None = None) -> None:
        self.repo = MemoryTaskRepository()
        self.queue = MemoryTaskQueue()
        self.lifecycle = Lifecycle(self.repo, Outbox(self.repo, self.queue))
        self.limiter = ProviderLimiter(MemoryLimiter(), {"demo": limits})
        self.clock = Clock()
        self.breaker = MemoryBreaker(policy or BreakerPolicy(), clock=self.clock)
        self.gauge = Gauge()
        self.workers: list[Worker] = []
        self.settings = DispatcherSettings(
            provider="demo",
            concurrency=4,
            max_attempts=3,
            backoff_base_seconds=0.01,
            backoff_cap_seconds=0.05,
            lease_seconds=3,
        )

    async def start(self, provider: str = "demo", *extra: WorkerHook) -> GaugedDemo:
        adapter = GaugedDemo(provider, self.gauge)
        hooks = Hooks(
            [
                ProviderLimitHook(self.limiter, provider, renew_every=0.5),
                BreakerHook(self.breaker, provider),
                *extra,
            ]
        )
        config = ConfigWatcher(provider, NoStoredConfig(), NoStoredConfig(), None)
        handler = TaskHandler(self.settings, adapter, self.lifecycle, config, hooks)
        worker = Worker(self.queue, provider, handler, self.settings.concurrency)
        await worker.start()
        self.workers.append(worker)
        return adapter

    async def create(self, prompt: str, model: str = "demo-text", **fields: Any) -> S.Task:
        if model == "demo-video":
            task = S.Task(type=S.TASK_TYPE_VIDEO, video=S.VideoSpec(prompt=prompt))
        else:
            task = S.Task(type=S.TASK_TYPE_TEXT, text=S.TextSpec(prompt=prompt))
        task.provider, task.model = "demo", model
        task.MergeFrom(S.Task(**fields))
        created, _ = await self.lifecycle.create(task)
        return created

    async def finished(self, task_id: str, timeout: float = 10) -> S.Task:
        return await eventually(
            lambda: self.lifecycle.get(task_id),
            lambda t: t.status in TERMINAL,
            timeout=timeout,
            what=f"task {task_id} finished",
        )

    async def in_flight(self) -> int:
        return (await self.limiter.usage("demo")).in_flight

    async def close(self) -> None:
        for worker in self.workers:
            await worker.drain(2)
        await self.queue.close()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    running = World(
        ProviderLimits(max_concurrent_jobs=2, lease_seconds=30, busy_retry_seconds=0.05)
    )
    yield running
    await running.close()


async def test_workers_share_the_concurrency_limit_and_waiting_spends_no_attempt(
    world: World,
) -> None:
    for _ in range(3):  # three replicas, four deliveries each: twelve could run at once
        await world.start()
    tasks = [await world.create(f"job {i} [sleep:80]") for i in range(10)]
    done = [await world.finished(t.task_id) for t in tasks]
    assert all(d.status == S.TASK_STATUS_SUCCEEDED for d in done)
    assert world.gauge.most == 2
    assert [d.attempts for d in done] == [1] * 10
    assert await world.in_flight() == 0


async def test_the_rate_limit_spaces_calls_without_spending_attempts() -> None:
    world = World(ProviderLimits(requests_per_minute=600, burst=2, lease_seconds=30))
    try:
        await world.start()
        await world.start()
        tasks = [await world.create(f"rated {i}") for i in range(6)]
        done = [await world.finished(t.task_id) for t in tasks]
    finally:
        await world.close()
    assert [d.attempts for d in done] == [1] * 6
    starts = sorted(world.gauge.starts)
    # Two at once (the burst), then one per 0.1 s: the sixth 0.4 s after the first (less the
    # first call's own delay between its grant and its start); unlimited, all six start at once.
    assert starts[5] - starts[0] >= 0.3


async def test_every_end_of_a_run_gives_its_slot_back(world: World) -> None:
    await world.start()
    ok = await world.create("fine")
    flaky = await world.create("flaky [fail:retryable:1]")
    broken = await world.create("broken [fail:permanent]")
    slow = await world.create("slow [sleep:5000]")
    await eventually(
        lambda: world.lifecycle.get(slow.task_id),
        lambda t: t.status == S.TASK_STATUS_RUNNING,
        what="slow running",
    )
    await world.lifecycle.cancel(slow.task_id)  # its run is lost: abandoned within a lease third
    results = [await world.finished(t.task_id) for t in (ok, flaky, broken)]
    assert [r.status for r in results] == [
        S.TASK_STATUS_SUCCEEDED,
        S.TASK_STATUS_SUCCEEDED,
        S.TASK_STATUS_FAILED,
    ]
    await eventually(world.in_flight, lambda n: n == 0, timeout=5, what="every slot back")


async def test_a_duplicate_delivery_keeps_the_running_task_slot(world: World) -> None:
    world.limiter = ProviderLimiter(
        MemoryLimiter(), {"demo": ProviderLimits(max_concurrent_jobs=1, busy_retry_seconds=0.05)}
    )
    await world.start()
    first = await world.create("first [sleep:400]")
    await eventually(
        lambda: world.lifecycle.get(first.task_id),
        lambda t: t.status == S.TASK_STATUS_RUNNING,
        what="first running",
    )
    # A duplicate of the running task's message renews the slot it holds, takes no second one
    # and releases nothing: the second task still waits for the first to finish.
    world.queue.put_raw("demo", TaskMessage(first.task_id).encode(), S.PRIORITY_DEFAULT)
    second = await world.create("second")
    done_first = await world.finished(first.task_id)
    done_second = await world.finished(second.task_id)
    assert world.gauge.most == 1
    assert done_second.start_time.ToNanoseconds() >= done_first.finish_time.ToNanoseconds()
    assert done_second.attempts == 1


async def test_a_long_job_holds_its_slot_from_submit_to_its_last_poll(world: World) -> None:
    world.limiter = ProviderLimiter(
        MemoryLimiter(), {"demo": ProviderLimits(max_concurrent_jobs=1, busy_retry_seconds=0.05)}
    )
    adapter = await world.start()
    adapter._settings = DemoSettings(video_render_seconds=0.4)
    first = await world.create("one", model="demo-video")
    second = await world.create("two", model="demo-video")
    done = [await world.finished(t.task_id) for t in (first, second)]
    assert all(d.status == S.TASK_STATUS_SUCCEEDED for d in done)
    # The second job was submitted only once the first one's polls had finished it.
    assert done[1].start_time.ToNanoseconds() >= done[0].finish_time.ToNanoseconds()
    assert [d.attempts for d in done] == [1, 1]
    assert await world.in_flight() == 0


def _breaking(threshold: int = 2) -> World:
    return World(
        ProviderLimits(),
        BreakerPolicy(failure_threshold=threshold, open_seconds=30, probe_seconds=5),
    )


async def test_provider_side_failures_open_the_breaker_and_later_tasks_fail_fast() -> None:
    world = _breaking()
    try:
        await world.start()
        bad = await world.create("down [fail:retryable:9]")
        failed = await world.finished(bad.task_id)
        assert (await world.breaker.state("demo", "demo-text")).state is BreakerState.OPEN
        calls = len(world.gauge.starts)
        fast = await world.create("anything")
        refused = await world.finished(fast.task_id)
    finally:
        await world.close()
    # Two failures opened it; the third attempt was refused without a call.
    assert failed.error.code == CIRCUIT_OPEN and failed.attempts == 3
    assert calls == 2
    assert refused.status == S.TASK_STATUS_FAILED and refused.attempts == 1
    assert refused.error.code == CIRCUIT_OPEN and refused.error.retryable
    assert refused.error.error_class == "provider_unavailable"
    assert len(world.gauge.starts) == calls  # never called
    assert len(world.queue.dead("demo")) == 2  # an operator can requeue them later


async def test_a_task_with_a_fallback_is_served_by_it_while_the_breaker_is_open() -> None:
    world = _breaking()
    try:
        await world.start("demo")
        backup = await world.start("backup")
        for _ in range(2):
            await world.breaker.record("demo", "demo-text", "provider_unavailable")
        fallback = S.ModelRef(provider="backup", model="demo-text")
        task = await world.create("route me", fallbacks=[fallback])
        done = await world.finished(task.task_id)
    finally:
        await world.close()
    assert done.status == S.TASK_STATUS_SUCCEEDED
    assert (done.provider, done.model) == ("demo", "demo-text")
    assert done.served_by == fallback
    assert done.attempts == 1 and done.result.text.startswith("Demo answer to: route me")
    assert backup.gauge.starts  # the backup did the work
    assert world.queue.dead("demo") == []


async def test_a_fallback_whose_own_breaker_is_open_is_passed_over() -> None:
    world = _breaking()
    try:
        await world.start("demo")
        await world.start("spare")
        for provider in ("demo", "backup"):
            for _ in range(2):
                await world.breaker.record(provider, "demo-text", "timeout")
        chain = [S.ModelRef(provider=p, model="demo-text") for p in ("backup", "spare")]
        task = await world.create("skip one", fallbacks=chain)
        done = await world.finished(task.task_id)
    finally:
        await world.close()
    assert done.status == S.TASK_STATUS_SUCCEEDED
    assert done.served_by.provider == "spare"


async def test_after_the_cooldown_one_probe_closes_the_breaker() -> None:
    world = _breaking()
    try:
        await world.start()
        for _ in range(2):
            await world.breaker.record("demo", "demo-text", "provider_unavailable")
        world.clock.offset = 31  # the cooldown has passed
        probe = await world.create("probe")
        done = await world.finished(probe.task_id)
        state = await world.breaker.state("demo", "demo-text")
    finally:
        await world.close()
    assert done.status == S.TASK_STATUS_SUCCEEDED
    assert state.state is BreakerState.CLOSED and state.failures == 0


async def test_quota_exhaustion_opens_the_breaker_at_once() -> None:
    world = _breaking(threshold=5)
    try:
        adapter = await world.start()
        adapter.quota_gone = True
        task = await world.create("pay me")
        failed = await world.finished(task.task_id)
        state = await world.breaker.state("demo", "demo-text")
        follower = await world.create("next")
        refused = await world.finished(follower.task_id)
    finally:
        await world.close()
    assert failed.error.error_class == "quota_exhausted" and failed.attempts == 1
    assert state.state is BreakerState.OPEN
    assert refused.error.code == CIRCUIT_OPEN


async def test_calls_with_the_request_own_credentials_neither_ask_nor_feed_the_breaker() -> None:
    breaker = MemoryBreaker(BreakerPolicy(failure_threshold=1))
    await breaker.record("demo", "demo-text", "auth")  # open
    hook = BreakerHook(breaker, "demo")
    task = S.Task(task_id="t", provider="demo", model="demo-text", request_credentials=True)
    call = Call(task=task, model=DemoProvider(DemoSettings()).catalogue()[2], attempt=1)
    run = Run("demo", task, "r", replace(call, config=CallConfig(source="request")))
    await hook.before_run(run)  # not refused
    await hook.after_call(run, "generate", 0.1, AuthFailed("their key is bad"))
    state = await breaker.state("demo", "demo-text")
    assert state.failures == 1  # only the platform's own failure


async def test_a_refused_limit_is_a_deferral_of_the_limiter_s_wait() -> None:
    limiter = ProviderLimiter(
        MemoryLimiter(),
        {"demo": ProviderLimits(requests_per_minute=60, burst=1, max_concurrent_jobs=5)},
    )
    hook = ProviderLimitHook(limiter, "demo", renew_every=1)
    first = await hook.before_claim(Delivery(TaskMessage("a"), S.PRIORITY_DEFAULT, False))
    second = await hook.before_claim(Delivery(TaskMessage("b"), S.PRIORITY_DEFAULT, False))
    again = await hook.before_claim(Delivery(TaskMessage("a"), S.PRIORITY_DEFAULT, True))
    assert first is None
    assert second is not None and 0.9 < second <= 1.0
    assert again is None  # "a" holds its slot: its redelivery is not counted again
