"""CancelTask in every state, and WatchTask streaming every transition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from genhub.v1 import task_pb2, task_service_pb2
from tests.support.documents import insert_task
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, error_reason, get, text_request, wait_status


@pytest.fixture
async def single(vhost: str, database: str) -> AsyncIterator[Stack]:
    """A stack whose worker runs one task at a time, so later tasks wait in the queue."""
    async with start_stack(vhost, database, concurrency=1) as running:
        yield running


async def _occupy(stack: Stack, millis: int = 1500) -> task_pb2.Task:
    """A task that keeps the single worker busy for ``millis``."""
    busy = (await stack.tasks.CreateTextTask(text_request(f"busy [sleep:{millis}]"))).task
    await wait_status(stack.tasks, busy.task_id, {S.TASK_STATUS_RUNNING})
    return busy


async def _cancel(stack: Stack, task_id: str) -> task_pb2.Task:
    return (await stack.tasks.CancelTask(task_service_pb2.CancelTaskRequest(task_id=task_id))).task


async def test_cancel_pending_task(single: Stack, mongo: AsyncMongoClient[dict[str, Any]]) -> None:
    # Written by an earlier version, which stored tasks as pending before publishing them.
    task_id = await insert_task(mongo, single.database, "never published", status="pending")
    assert (await get(single.tasks, task_id)).status == S.TASK_STATUS_PENDING
    cancelled = await _cancel(single, task_id)
    assert cancelled.status == S.TASK_STATUS_CANCELLED
    assert cancelled.HasField("finish_time")


async def test_cancel_queued_task_never_runs(single: Stack) -> None:
    busy = await _occupy(single)
    waiting = (await single.tasks.CreateTextTask(text_request("waiting"))).task
    assert waiting.status == S.TASK_STATUS_QUEUED
    assert (await _cancel(single, waiting.task_id)).status == S.TASK_STATUS_CANCELLED

    await wait_status(single.tasks, busy.task_id, {S.TASK_STATUS_SUCCEEDED})
    # The worker takes the cancelled task's message next, and must skip it.
    after = (await single.tasks.CreateTextTask(text_request("after"))).task
    await wait_status(single.tasks, after.task_id, {S.TASK_STATUS_SUCCEEDED})
    final = await get(single.tasks, waiting.task_id)
    assert final.status == S.TASK_STATUS_CANCELLED
    assert final.attempts == 0
    assert not final.result.text


async def test_cancel_running_task_discards_its_result(single: Stack) -> None:
    running = await _occupy(single, millis=800)
    assert (await _cancel(single, running.task_id)).status == S.TASK_STATUS_CANCELLED
    # The worker finishes the call, is refused when it records, and moves on.
    after = (await single.tasks.CreateTextTask(text_request("after"))).task
    await wait_status(single.tasks, after.task_id, {S.TASK_STATUS_SUCCEEDED})
    final = await get(single.tasks, running.task_id)
    assert final.status == S.TASK_STATUS_CANCELLED
    assert not final.result.text


async def test_cancel_finished_task_is_a_failed_precondition(stack: Stack) -> None:
    task = (await stack.tasks.CreateTextTask(text_request())).task
    await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _cancel(stack, task.task_id)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(raised.value) == "TASK_FINISHED"
    assert (await get(stack.tasks, task.task_id)).status == S.TASK_STATUS_SUCCEEDED


async def test_watch_streams_every_transition(single: Stack) -> None:
    busy = await _occupy(single, millis=600)
    task = (await single.tasks.CreateTextTask(text_request("watch me [sleep:200]"))).task
    seen: list[int] = []
    stream = single.tasks.WatchTask(task_service_pb2.WatchTaskRequest(task_id=task.task_id))
    async for update in stream:
        seen.append(update.task.status)
    assert seen == [S.TASK_STATUS_QUEUED, S.TASK_STATUS_RUNNING, S.TASK_STATUS_SUCCEEDED]
    final = await get(single.tasks, task.task_id)
    assert "watch me" in final.result.text
    await wait_status(single.tasks, busy.task_id, {S.TASK_STATUS_SUCCEEDED})


async def test_watch_of_a_finished_task_sends_it_once(stack: Stack) -> None:
    task = (await stack.tasks.CreateTextTask(text_request())).task
    await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    updates = [
        u
        async for u in stack.tasks.WatchTask(
            task_service_pb2.WatchTaskRequest(task_id=task.task_id)
        )
    ]
    assert [u.task.status for u in updates] == [S.TASK_STATUS_SUCCEEDED]
    assert updates[0].task.result.text


async def test_watch_of_a_missing_task_is_not_found(stack: Stack) -> None:
    stream = stack.tasks.WatchTask(task_service_pb2.WatchTaskRequest(task_id="missing"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in stream:
            pass
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
