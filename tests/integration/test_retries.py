"""Retryable failures are retried with backoff; permanent ones fail; exhausted ones dead-letter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from genhub.common import topology
from genhub.common.task_queue import Action, Delivery
from genhub.common.topology import TaskMessage
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import Call, Submitted
from genhub.taskstore import documents
from genhub.v1 import task_service_pb2
from tests.support import infra
from tests.support.documents import insert_task
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, text_request, wait_status
from tests.support.waiting import eventually


async def test_retryable_failure_is_retried_then_succeeds(stack: Stack) -> None:
    task = (await stack.tasks.CreateTextTask(text_request("flaky [fail:retryable:2]"))).task
    done = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.attempts == 3  # two failures, then the success
    assert "flaky" in done.result.text
    assert not done.error.code  # a success clears the last attempt's error
    # Backoff: the two retries waited at least base*2^0/2 + base*2^1/2 seconds in delay queues.
    elapsed = (done.finish_time.ToNanoseconds() - done.create_time.ToNanoseconds()) / 1e9
    assert elapsed >= 0.05 / 2 + 0.1 / 2
    assert await infra.queue_depth(stack.vhost, topology.dead_queue("demo")) == 0


async def test_permanent_failure_fails_at_once_with_the_error(stack: Stack) -> None:
    task = (await stack.tasks.CreateTextTask(text_request("broken [fail:permanent]"))).task
    failed = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_FAILED})
    assert failed.attempts == 1
    assert failed.error.code == "DEMO_PERMANENT"
    assert not failed.error.retryable
    assert "permanent failure" in failed.error.message
    assert await infra.queue_depth(stack.vhost, topology.dead_queue("demo")) == 0


async def test_exhausted_retries_fail_the_task_and_dead_letter_the_message(stack: Stack) -> None:
    task = (await stack.tasks.CreateTextTask(text_request("hopeless [fail:retryable:99]"))).task
    failed = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_FAILED})
    assert failed.attempts == 3  # max_attempts in the test stack
    assert failed.error.code == "DEMO_RETRYABLE"
    assert failed.error.retryable
    depth = await eventually(
        lambda: infra.queue_depth(stack.vhost, topology.dead_queue("demo")),
        lambda n: n == 1,
        what="one dead-lettered message",
    )
    assert depth == 1


async def test_empty_result_is_a_retryable_failure_never_a_success(stack: Stack) -> None:
    task = (await stack.tasks.CreateTextTask(text_request("nothing [empty]"))).task
    failed = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_FAILED})
    assert failed.error.code == "EMPTY_RESULT"
    assert failed.attempts == 3
    assert not failed.result.text


async def test_a_task_whose_worker_keeps_dying_fails_instead_of_looping(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # As after three workers were killed running it: running, attempts used up, lease lapsed.
    task_id = await insert_task(
        mongo,
        stack.database,
        "poison",
        status="running",
        attempts=3,
        max_attempts=3,
        run_id="r",
        lease_until=documents.now() - timedelta(seconds=1),
    )
    assert stack.worker is not None
    delivery = Delivery(TaskMessage(task_id), S.PRIORITY_DEFAULT, redelivered=True)
    verdict = await stack.worker.handler.handle(delivery)
    assert verdict.action is Action.DEAD_LETTER
    failed = await stack.store.get(task_id)
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.error.code == "WORKER_CRASHED"


class CountingDemo(DemoProvider):
    """The demo provider, counting video job submissions."""

    def __init__(self) -> None:
        super().__init__(DemoSettings(video_render_seconds=0.1))
        self.submitted: list[str] = []

    async def submit(self, call: Call) -> Submitted:
        submitted = await super().submit(call)
        self.submitted.append(submitted.job_id)
        return submitted


async def test_a_failed_long_running_job_is_resubmitted_on_retry(vhost: str, database: str) -> None:
    demo = CountingDemo()
    async with start_stack(vhost, database, provider=demo) as stack:
        request = task_service_pb2.CreateVideoTaskRequest(
            provider="demo",
            model="demo-video",
            video=S.VideoSpec(prompt="never renders [empty]", duration_seconds=2),
        )
        task = (await stack.tasks.CreateVideoTask(request)).task
        failed = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_FAILED})
    assert failed.error.code == "EMPTY_RESULT"
    assert failed.attempts == 3
    # Each attempt submitted a job of its own, rather than polling the failed one again.
    assert len(demo.submitted) == 3
    assert len(set(demo.submitted)) == 3
