"""The sweeper re-publishes tasks left pending and re-queues runs that stopped reporting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from pymongo import AsyncMongoClient

from genhub.dispatcher.sweeper import Sweeper
from genhub.v1 import task_pb2
from tests.support import infra
from tests.support.stack import Stack, dispatcher_settings
from tests.support.tasks import S, wait_status


def _text_task(prompt: str) -> task_pb2.Task:
    return task_pb2.Task(
        type=S.TASK_TYPE_TEXT, provider="demo", model="demo-text", text=S.TextSpec(prompt=prompt)
    )


async def _sweep(stack: Stack, **settings: Any) -> int:
    connection = await aio_pika.connect(infra.amqp_url(stack.vhost))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        sweeper = Sweeper(
            dispatcher_settings(stack.vhost, stack.taskstore_addr, **settings), stack.store, channel
        )
        return await sweeper.sweep()


async def test_a_task_never_published_is_found_and_run(stack: Stack) -> None:
    orphan, _ = await stack.store.insert(_text_task("orphaned by a gateway crash"))
    assert orphan.status == S.TASK_STATUS_PENDING
    assert await _sweep(stack, pending_grace_seconds=60) == 0  # too young to be an orphan
    assert await _sweep(stack, pending_grace_seconds=0.001) == 1
    done = await wait_status(stack.tasks, orphan.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.attempts == 1
    assert "orphaned" in done.result.text


async def test_a_run_that_stopped_reporting_is_requeued_and_finished(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    task, _ = await stack.store.insert(_text_task("lost worker"))
    # As if a worker claimed it and vanished without the broker noticing (no message left).
    await stack.store.transition(
        task.task_id, [S.TASK_STATUS_PENDING], S.TASK_STATUS_RUNNING, start_run=True
    )
    await mongo[stack.database]["tasks"].update_one(
        {"_id": task.task_id}, {"$set": {"updated_at": datetime.now(UTC) - timedelta(hours=1)}}
    )
    assert await _sweep(stack, stale_running_seconds=600) == 1
    done = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.attempts == 2


async def test_a_stale_run_out_of_attempts_fails(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    task, _ = await stack.store.insert(_text_task("lost too often"))
    await stack.store.transition(
        task.task_id, [S.TASK_STATUS_PENDING], S.TASK_STATUS_RUNNING, start_run=True
    )
    await mongo[stack.database]["tasks"].update_one(
        {"_id": task.task_id},
        {"$set": {"attempts": 3, "updated_at": datetime.now(UTC) - timedelta(hours=1)}},
    )
    assert await _sweep(stack, stale_running_seconds=600, max_attempts=3) == 1
    failed, _ = await stack.store.get(task.task_id)
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.error.code == "WORKER_LOST"
