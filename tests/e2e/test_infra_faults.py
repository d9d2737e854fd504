"""Infrastructure faults: a restarted RabbitMQ or FerretDB loses no task and duplicates no result.

These restart the shared local services (through ``scripts/infra.sh restart``), so they run
against the infrastructure ``make infra-up`` started.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from genhub.v1 import task_pb2
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, text_request, wait_status

ROOT = Path(__file__).resolve().parents[2]
# A broker that goes away mid-conversation leaves aiormq's dead socket writers to the garbage
# collector, which warns about them; that is the fault being injected, not a leak of ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


async def _restart(service: str) -> None:
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "infra.sh"),
        "restart",
        service,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


@pytest.fixture
async def stack(vhost: str, database: str) -> AsyncIterator[Stack]:
    # The outbox relay retries unsent messages every half second (instead of ten).
    async with start_stack(
        vhost, database, store_settings={"relay_heartbeat_seconds": 0.5}
    ) as running:
        yield running
    # Collect the dead connections now, while this module's warning filter applies.
    gc.collect()


async def _finish_all(stack: Stack, tasks: list[task_pb2.Task]) -> list[task_pb2.Task]:
    return [
        await wait_status(stack.tasks, t.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=60)
        for t in tasks
    ]


async def test_a_broker_restart_loses_no_task(stack: Stack) -> None:
    before = [
        (await stack.tasks.CreateTextTask(text_request(f"before {i} [sleep:500]"))).task
        for i in range(6)
    ]
    await wait_status(stack.tasks, before[0].task_id, {S.TASK_STATUS_RUNNING})
    restart = asyncio.create_task(_restart("rabbitmq"))
    # Creates during the outage are stored and answered as queued (task-store's outbox
    # publishes them once the broker is back), never refused or lost.
    during: list[task_pb2.Task] = []
    while not restart.done():
        with contextlib.suppress(grpc.aio.AioRpcError):
            during.append((await stack.tasks.CreateTextTask(text_request("during"))).task)
        await asyncio.sleep(0.2)  # pacing the clients, not synchronising
    await restart
    assert during, "no task was created while the broker restarted"
    assert all(t.status == S.TASK_STATUS_QUEUED for t in during)

    done = await _finish_all(stack, before + during)
    assert all(d.result.text.startswith("Demo answer to:") for d in done)
    # Exactly one result per task, and no task ran more than once per delivery it lost.
    assert all(1 <= d.attempts <= 2 for d in done)
    assert len({d.task_id for d in done}) == len(before) + len(during)


async def test_a_database_restart_loses_no_task(stack: Stack) -> None:
    tasks = [
        (await stack.tasks.CreateTextTask(text_request(f"db {i} [sleep:300]"))).task
        for i in range(6)
    ]
    await wait_status(stack.tasks, tasks[0].task_id, {S.TASK_STATUS_RUNNING})
    await _restart("ferretdb")
    done = await _finish_all(stack, tasks)
    assert all(d.result.text.startswith("Demo answer to: db") for d in done)
    after = (await stack.tasks.CreateTextTask(text_request("after the restart"))).task
    await wait_status(stack.tasks, after.task_id, {S.TASK_STATUS_SUCCEEDED})
