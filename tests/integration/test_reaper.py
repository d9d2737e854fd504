"""task-store's reaper and outbox relay, against the real FerretDB and RabbitMQ: tasks that fell
between the cracks are found (all of them, page after page) and put back on the road."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from genhub.common import topology
from genhub.taskstore import documents
from genhub.taskstore.reaper import BATCH, Reaper
from tests.support import infra
from tests.support.documents import insert_task
from tests.support.stack import Stack
from tests.support.tasks import S, wait_status
from tests.support.waiting import eventually


def _reaper(stack: Stack, **settings: float) -> Reaper:
    return Reaper(stack.taskstore.lifecycle, stack.taskstore.queue, **settings)


async def test_a_legacy_pending_task_is_published_and_run(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # Written by an earlier version: stored pending, and its gateway died before publishing.
    task_id = await insert_task(mongo, stack.database, "orphaned by a crash", status="pending")
    assert await _reaper(stack, pending_grace_seconds=60).sweep() == 0  # too young
    assert await _reaper(stack, pending_grace_seconds=0.001).sweep() == 1
    done = await wait_status(stack.tasks, task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.attempts == 1
    assert "orphaned" in done.result.text


async def test_a_run_whose_lease_lapsed_is_requeued_and_finished(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # As if a worker claimed it and vanished without the broker noticing (no message left).
    lapsed = documents.now() - timedelta(seconds=1)
    task_id = await insert_task(
        mongo,
        stack.database,
        "lost worker",
        status="running",
        attempts=1,
        max_attempts=3,
        run_id="gone",
        lease_until=lapsed,
    )
    live = await insert_task(
        mongo,
        stack.database,
        "still leased",
        status="running",
        attempts=1,
        max_attempts=3,
        run_id="alive",
        lease_until=documents.now() + timedelta(minutes=5),
    )
    assert await _reaper(stack).sweep() == 1
    done = await wait_status(stack.tasks, task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.attempts == 2
    assert (await stack.store.get(live)).status == S.TASK_STATUS_RUNNING  # its lease holds


async def test_a_lapsed_run_out_of_attempts_fails_and_is_dead_lettered(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    task_id = await insert_task(
        mongo,
        stack.database,
        "lost too often",
        status="running",
        attempts=3,
        max_attempts=3,
        run_id="gone",
        lease_until=documents.now() - timedelta(seconds=1),
    )
    assert await _reaper(stack).sweep() == 1
    failed = await stack.store.get(task_id)
    assert failed.status == S.TASK_STATUS_FAILED
    assert failed.error.code == "WORKER_LOST"
    assert await infra.queue_depth(stack.vhost, topology.dead_queue("demo")) == 1


async def test_the_reaper_pages_through_every_lost_run_not_a_first_batch(
    vhost: str, database: str, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    from tests.support.stack import start_stack

    count = BATCH + 50
    lapsed = documents.now() - timedelta(seconds=1)
    async with start_stack(vhost, database, worker=False) as stack:
        for i in range(count):
            await insert_task(
                mongo,
                stack.database,
                f"lost {i}",
                status="running",
                attempts=1,
                max_attempts=3,
                run_id=f"r{i}",
                lease_until=lapsed,
            )
        assert await _reaper(stack).sweep() == count
        queued = await mongo[database]["tasks"].count_documents({"status": "queued"})
        assert queued == count
        depth = await eventually(
            lambda: infra.queue_depth(vhost, topology.work_queue("demo")),
            lambda n: n == count,
            what=f"{count} republished messages",
        )
        assert depth == count


async def test_a_dead_relays_unpublished_tasks_are_adopted_and_run(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # A task-store wrote these (queued, stamped with its relay) and died before publishing.
    dead = "deadrelay"
    ids = [
        await insert_task(mongo, stack.database, f"unpublished {i}", outbox=dead) for i in range(3)
    ]
    long_ago = documents.now() - timedelta(hours=1)
    await mongo[stack.database]["relays"].insert_one({"_id": dead, "seen_at": long_ago})
    await stack.taskstore.outbox.tick()
    for task_id in ids:
        done = await wait_status(stack.tasks, task_id, {S.TASK_STATUS_SUCCEEDED})
        assert done.attempts == 1
    relays = await mongo[stack.database]["relays"].distinct("_id")
    assert dead not in relays
    assert stack.taskstore.outbox.relay in relays  # the live relay keeps its heartbeat
