"""Workers as real processes: SIGKILL mid-task loses nothing and duplicates nothing; SIGTERM
drains in-flight work before exiting."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from genhub.common import topology
from genhub.v1 import task_pb2
from tests.support import infra
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, text_request, wait_status
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults


async def _spawn_worker(stack: Stack, **env: str) -> asyncio.subprocess.Process:
    environment = (
        os.environ
        | {
            "GENHUB_AMQP_URL": infra.amqp_url(stack.vhost),
            "GENHUB_REDIS_URL": infra.REDIS_URL,
            "GENHUB_TASKSTORE_ADDR": stack.taskstore_addr,
            "GENHUB_CONCURRENCY": "4",
            "GENHUB_MAX_ATTEMPTS": "5",
            # A killed worker's runs are taken over once their lease lapses.
            "GENHUB_LEASE_SECONDS": "3",
            "GENHUB_LOG_LEVEL": "WARNING",
            "GENHUB_HEALTH_LISTEN": "127.0.0.1:0",
            "GENHUB_METRICS_LISTEN": "",
        }
        | env
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genhub.dispatcher", "--provider", "demo", env=environment
    )
    # Ready once it has declared its catalogue to task-store.
    await eventually(
        stack.store.list_providers,
        lambda ps: any(p.name == "demo" for p in ps),
        what="worker registered",
    )
    return process


@pytest.fixture
async def bare(vhost: str, database: str) -> AsyncIterator[Stack]:
    """task-store and gateway only: the tests bring their own worker processes."""
    async with start_stack(vhost, database, worker=False) as running:
        yield running


async def test_sigkill_mid_task_completes_every_task_exactly_once(bare: Stack) -> None:
    first = await _spawn_worker(bare)
    tasks = [
        (await bare.tasks.CreateTextTask(text_request(f"job {i} [sleep:1500]"))).task
        for i in range(6)
    ]
    # Four run (concurrency 4), two wait; kill the worker while they run.
    for task in tasks[:4]:
        await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_RUNNING})
    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL

    second = await _spawn_worker(bare)
    try:
        finished: list[task_pb2.Task] = [
            await wait_status(bare.tasks, t.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=30)
            for t in tasks
        ]
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
    for task, done in zip(tasks, finished, strict=True):
        assert done.result.text.startswith("Demo answer to: job"), done
        assert task.task_id in done.result.provider_request_id
    # The killed runs count as attempts; the restarted ones produced the only results.
    assert [d.attempts for d in finished[:4]] == [2, 2, 2, 2]
    assert [d.attempts for d in finished[4:]] == [1, 1]
    assert await infra.queue_depth(bare.vhost, topology.work_queue("demo")) == 0
    assert await infra.queue_depth(bare.vhost, topology.dead_queue("demo")) == 0


async def test_sigterm_drains_in_flight_work_then_exits(bare: Stack) -> None:
    worker = await _spawn_worker(bare, GENHUB_DRAIN_GRACE_SECONDS="10")
    task = (await bare.tasks.CreateTextTask(text_request("drain me [sleep:1000]"))).task
    await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_RUNNING})
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), timeout=15) == 0
    done = await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=1)
    assert done.attempts == 1


async def test_sigterm_past_the_grace_hands_work_back(bare: Stack) -> None:
    worker = await _spawn_worker(bare, GENHUB_DRAIN_GRACE_SECONDS="0.2")
    task = (await bare.tasks.CreateTextTask(text_request("long [sleep:3000]"))).task
    await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_RUNNING})
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), timeout=15) == 0
    # The unfinished delivery went back to the queue; the next worker completes it.
    successor = await _spawn_worker(bare)
    try:
        done = await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=20)
    finally:
        successor.send_signal(signal.SIGTERM)
        await successor.wait()
    assert done.attempts == 2
