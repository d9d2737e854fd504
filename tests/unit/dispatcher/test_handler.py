"""Worker policy over the in-memory twins (lifecycle, queue) and the offline demo provider:
retries, dead letters, leases, provider jobs and hooks, in milliseconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from genhub.common.errors import Internal, NotFound
from genhub.common.memory_queue import MemoryTaskQueue
from genhub.common.task_queue import Action, Delivery
from genhub.common.topology import TaskMessage
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.credentials import ConfigWatcher
from genhub.dispatcher.handler import INTERNAL_HANDBACK_BUDGET, TaskHandler
from genhub.dispatcher.hooks import Hooks, Run, WorkerHook
from genhub.dispatcher.worker import Worker
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import Call, ProviderError, Submitted
from genhub.store.v1 import provider_store_pb2
from genhub.taskstore.memory_task_repository import MemoryTaskRepository
from genhub.taskstore.operations import Lifecycle
from genhub.taskstore.outbox import Outbox
from genhub.v1 import provider_pb2, task_pb2
from tests.support.waiting import eventually

S = task_pb2
TERMINAL = {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELLED}


class NoStoredConfig:
    """Task-store's provider catalogue and config API, with nothing stored."""

    async def list_providers(self) -> list[provider_pb2.Provider]:
        return []

    async def get_config(self, name: str) -> provider_store_pb2.StoredProviderConfig:
        raise NotFound("none")


class CountingDemo(DemoProvider):
    """The demo provider, counting its calls."""

    def __init__(self) -> None:
        super().__init__(DemoSettings(video_render_seconds=0.05))
        self.generated = 0
        self.submitted: list[str] = []
        self.cancelled: list[str] = []

    async def generate(self, call: Call) -> Any:
        self.generated += 1
        return await super().generate(call)

    async def submit(self, call: Call) -> Submitted:
        submitted = await super().submit(call)
        self.submitted.append(submitted.job_id)
        return submitted

    async def cancel(self, call: Call, job_id: str) -> None:
        self.cancelled.append(job_id)
        await super().cancel(call, job_id)


class Recorder(WorkerHook):
    def __init__(self) -> None:
        self.retries: list[tuple[str, float]] = []
        self.dead: list[str] = []
        self.skips: list[str] = []
        self.completed: list[str] = []

    async def on_retry(self, run: Run, error: ProviderError, delay: float) -> None:
        self.retries.append((error.code, delay))

    async def on_dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.dead.append(reason)

    async def on_skip(self, delivery: Delivery, reason: str) -> None:
        self.skips.append(reason)

    async def on_complete(self, run: Run, task: task_pb2.Task) -> None:
        self.completed.append(task.task_id)


class Rig:
    def __init__(self, **settings: Any) -> None:
        self.repo = MemoryTaskRepository()
        self.queue = MemoryTaskQueue()
        self.lifecycle = Lifecycle(self.repo, Outbox(self.repo, self.queue))
        self.provider = CountingDemo()
        self.settings = DispatcherSettings(
            provider="demo",
            concurrency=4,
            max_attempts=3,
            backoff_base_seconds=0.01,
            backoff_cap_seconds=0.05,
            lease_seconds=3,
            **settings,
        )
        self.recorder = Recorder()
        config = ConfigWatcher("demo", NoStoredConfig(), NoStoredConfig(), None)
        self.handler = TaskHandler(
            self.settings, self.provider, self.lifecycle, config, Hooks([self.recorder])
        )
        self.worker = Worker(self.queue, "demo", self.handler, self.settings.concurrency)

    async def create(self, prompt: str, model: str = "demo-text") -> task_pb2.Task:
        if model == "demo-video":
            task = S.Task(
                type=S.TASK_TYPE_VIDEO, video=S.VideoSpec(prompt=prompt, duration_seconds=2)
            )
        else:
            task = S.Task(type=S.TASK_TYPE_TEXT, text=S.TextSpec(prompt=prompt))
        task.provider, task.model = "demo", model
        created, _ = await self.lifecycle.create(task)
        return created

    async def finished(self, task_id: str) -> task_pb2.Task:
        return await eventually(
            lambda: self.lifecycle.get(task_id),
            lambda t: t.status in TERMINAL,
            timeout=10,
            what=f"task {task_id} finished",
        )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    running = Rig()
    await running.worker.start()
    yield running
    await running.worker.drain(2)
    await running.queue.close()


async def test_a_task_runs_once_and_succeeds_in_three_writes(rig: Rig) -> None:
    task = await rig.create("hello")
    done = await rig.finished(task.task_id)
    assert done.status == S.TASK_STATUS_SUCCEEDED and "hello" in done.result.text
    assert done.attempts == 1
    assert rig.provider.generated == 1
    assert rig.repo.writes == 3
    assert rig.recorder.completed == [task.task_id]


async def test_retryable_failures_are_retried_with_backoff_then_succeed(rig: Rig) -> None:
    task = await rig.create("flaky [fail:retryable:2]")
    done = await rig.finished(task.task_id)
    assert done.status == S.TASK_STATUS_SUCCEEDED and done.attempts == 3
    assert [code for code, _ in rig.recorder.retries] == ["DEMO_RETRYABLE"] * 2
    assert all(0 < delay <= 0.05 for _, delay in rig.recorder.retries)
    assert rig.queue.dead("demo") == []


async def test_exhausted_retries_fail_and_dead_letter(rig: Rig) -> None:
    task = await rig.create("hopeless [fail:retryable:9]")
    failed = await rig.finished(task.task_id)
    assert failed.status == S.TASK_STATUS_FAILED and failed.attempts == 3
    assert failed.error.retryable and failed.error.error_class == "provider_unavailable"
    assert len(rig.queue.dead("demo")) == 1
    assert rig.recorder.dead == ["attempts exhausted"]


async def test_a_permanent_failure_fails_at_once_without_a_dead_letter(rig: Rig) -> None:
    task = await rig.create("broken [fail:permanent]")
    failed = await rig.finished(task.task_id)
    assert failed.attempts == 1 and failed.error.code == "DEMO_PERMANENT"
    assert rig.queue.dead("demo") == []


async def test_an_empty_output_is_retried_and_never_a_success(rig: Rig) -> None:
    task = await rig.create("nothing [empty]")
    failed = await rig.finished(task.task_id)
    assert failed.status == S.TASK_STATUS_FAILED and failed.error.code == "EMPTY_RESULT"
    assert failed.attempts == 3 and not failed.result.text


async def test_an_unknown_model_fails_as_not_served(rig: Rig) -> None:
    task = await rig.create("x", model="demo-nonexistent")
    failed = await rig.finished(task.task_id)
    assert failed.error.code == "MODEL_NOT_SERVED"


async def test_a_video_job_is_submitted_once_and_polled_to_completion(rig: Rig) -> None:
    task = await rig.create("waves", model="demo-video")
    done = await rig.finished(task.task_id)
    assert done.status == S.TASK_STATUS_SUCCEEDED and done.result.video.url
    assert len(rig.provider.submitted) == 1 and done.attempts == 1


async def test_a_new_run_after_a_crash_polls_the_recorded_job_instead_of_resubmitting() -> None:
    rig = Rig()
    task = await rig.create("waves", model="demo-video")
    # A first run submitted the job, recorded it, then its worker died.
    claim = await rig.lifecycle.claim(task.task_id, lease=3, max_attempts=3)
    job = await rig.provider.submit(
        Call(task=claim.task, model=rig.provider.catalogue()[2], attempt=1)
    )
    await rig.lifecycle.record_job(task.task_id, claim.run_id, job.job_id, poll_after=60, lease=3)
    rig.repo.tasks[task.task_id]["lease_until"] = rig.repo.tasks[task.task_id]["started_at"]
    await rig.worker.start()
    rig.queue.put_raw("demo", TaskMessage(task.task_id).encode(), S.PRIORITY_DEFAULT)
    done = await rig.finished(task.task_id)
    await rig.worker.drain(2)
    assert done.status == S.TASK_STATUS_SUCCEEDED and done.attempts == 2
    assert rig.provider.submitted == [job.job_id]  # never submitted again


async def test_a_duplicate_delivery_of_a_running_task_never_calls_the_provider_twice(
    rig: Rig,
) -> None:
    task = await rig.create("slow [sleep:300]")
    await eventually(
        lambda: rig.lifecycle.get(task.task_id),
        lambda t: t.status == S.TASK_STATUS_RUNNING,
        what="running",
    )
    duplicate = Delivery(TaskMessage(task.task_id), S.PRIORITY_DEFAULT, redelivered=True)
    verdict = await rig.handler.handle(duplicate)
    assert verdict.action is Action.DEFER and 1 <= verdict.delay <= 3
    await rig.finished(task.task_id)
    assert rig.provider.generated == 1
    assert "leased" in rig.recorder.skips


async def test_cancel_during_a_provider_job_cancels_it_at_the_provider(rig: Rig) -> None:
    rig.provider._settings = DemoSettings(video_render_seconds=30)
    task = await rig.create("long", model="demo-video")
    await eventually(
        lambda: rig.lifecycle.get(task.task_id),
        lambda t: bool(t.provider_job_id),
        what="job recorded",
    )
    await rig.lifecycle.cancel(task.task_id)
    await eventually(
        lambda: _value(rig.provider.cancelled), lambda c: len(c) == 1, what="job cancelled"
    )
    assert rig.provider.cancelled == rig.provider.submitted


async def _value(x: list[str]) -> list[str]:
    return list(x)


class Throttle(WorkerHook):
    def __init__(self) -> None:
        self.asked = 0

    async def before_claim(self, delivery: Delivery) -> float | None:
        self.asked += 1
        return 0.2 if self.asked == 1 else None


async def test_a_hook_can_hold_a_message_back_without_spending_an_attempt() -> None:
    rig = Rig()
    throttle = Throttle()
    rig.handler.hooks.add(throttle)
    await rig.worker.start()
    task = await rig.create("later")
    done = await rig.finished(task.task_id)
    await rig.worker.drain(2)
    assert throttle.asked == 2 and done.attempts == 1


class BrokenStore(Lifecycle):
    async def claim(self, task_id: str, **kwargs: Any) -> Any:
        raise Internal("task-store bug")


async def test_a_store_bug_hands_the_message_back_a_few_times_then_dead_letters() -> None:
    rig = Rig()
    broken = BrokenStore(rig.repo, Outbox(rig.repo, rig.queue))
    handler = TaskHandler(rig.settings, rig.provider, broken, rig.handler._config, Hooks())
    message = TaskMessage("t1")
    for handbacks in range(INTERNAL_HANDBACK_BUDGET):
        verdict = await handler.handle(Delivery(message, S.PRIORITY_DEFAULT, False))
        assert verdict.action is Action.DEFER and verdict.message is not None
        assert verdict.message.handbacks == handbacks + 1
        message = verdict.message
    final = await handler.handle(Delivery(message, S.PRIORITY_DEFAULT, False))
    assert final.action is Action.DEAD_LETTER
