"""Priorities: a critical task overtakes a backlog of low ones (measured wait, not only order)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genhub.v1 import task_pb2
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, get, text_request, wait_status


@pytest.fixture
async def single(vhost: str, database: str) -> AsyncIterator[Stack]:
    async with start_stack(vhost, database, concurrency=1) as running:
        yield running


def _wait_seconds(task: task_pb2.Task) -> float:
    return (task.start_time.ToNanoseconds() - task.create_time.ToNanoseconds()) / 1e9


async def test_critical_task_starts_before_a_backlog_of_low_tasks(single: Stack) -> None:
    busy = (await single.tasks.CreateTextTask(text_request("busy [sleep:2500]"))).task
    await wait_status(single.tasks, busy.task_id, {S.TASK_STATUS_RUNNING})
    lows = [
        (
            await single.tasks.CreateTextTask(
                text_request(f"low {i} [sleep:40]", priority=S.PRIORITY_LOW)
            )
        ).task
        for i in range(30)
    ]
    critical = (
        await single.tasks.CreateTextTask(text_request("urgent", priority=S.PRIORITY_CRITICAL))
    ).task

    # The backlog must have formed while the worker was still busy, or there is no contest.
    assert (await get(single.tasks, busy.task_id)).status == S.TASK_STATUS_RUNNING
    done_critical = await wait_status(single.tasks, critical.task_id, {S.TASK_STATUS_SUCCEEDED})
    finished_lows = [
        await wait_status(single.tasks, t.task_id, {S.TASK_STATUS_SUCCEEDED}) for t in lows
    ]
    first_low_start = min(t.start_time.ToNanoseconds() for t in finished_lows)
    assert done_critical.start_time.ToNanoseconds() < first_low_start
    # The critical task waited only for the task already running, not for the backlog:
    # its queue wait is well below the last low task's, which sat behind the whole backlog.
    backlog_wait = max(_wait_seconds(t) for t in finished_lows)
    assert _wait_seconds(done_critical) < backlog_wait - 0.9, (
        f"critical waited {_wait_seconds(done_critical):.3f}s, "
        f"the last low task {backlog_wait:.3f}s"
    )
    assert (await get(single.tasks, busy.task_id)).status == S.TASK_STATUS_SUCCEEDED
