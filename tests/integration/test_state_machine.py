"""task-store's state machine: illegal transitions are refused, and every change is a
compare-and-set that exactly one concurrent caller wins."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from genhub.common.errors import FailedPrecondition
from genhub.taskstore import states
from genhub.taskstore.repository import TaskRepository
from genhub.v1 import task_pb2

S = task_pb2
ALL: list[task_pb2.TaskStatus.ValueType] = [
    S.TASK_STATUS_PENDING,
    S.TASK_STATUS_QUEUED,
    S.TASK_STATUS_RUNNING,
    S.TASK_STATUS_SUCCEEDED,
    S.TASK_STATUS_FAILED,
    S.TASK_STATUS_CANCELLED,
    S.TASK_STATUS_EXPIRED,
]
LEGAL = {
    ("pending", "queued"),
    ("pending", "running"),
    ("pending", "cancelled"),
    ("pending", "failed"),
    ("queued", "queued"),
    ("queued", "running"),
    ("queued", "cancelled"),
    ("queued", "failed"),
    ("running", "running"),
    ("running", "queued"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("succeeded", "expired"),
}


@pytest.fixture
async def repo(mongo: AsyncMongoClient[dict[str, Any]], database: str) -> TaskRepository:
    return await TaskRepository.open(mongo, database)


async def _task_in(
    repo: TaskRepository,
    mongo: AsyncMongoClient[dict[str, Any]],
    database: str,
    status: task_pb2.TaskStatus.ValueType,
) -> str:
    from genhub.common.ids import new_id

    task = S.Task(
        task_id=new_id(),
        type=S.TASK_TYPE_TEXT,
        provider="demo",
        model="demo-text",
        text=S.TextSpec(prompt="p"),
    )
    await repo.insert(task)
    await mongo[database]["tasks"].update_one(
        {"_id": task.task_id},
        {"$set": {"status": states.NAMES[status], "run_id": "r1"}},
    )
    return task.task_id


def test_the_table_is_exactly_the_documented_state_machine() -> None:
    table = {
        (states.NAMES[a], states.NAMES[b])
        for a, b in itertools.product(ALL, ALL)
        if states.is_legal(a, b)
    }
    assert table == LEGAL


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (a, b)
        for a, b in itertools.product(ALL, ALL)
        if (states.NAMES[a], states.NAMES[b]) not in LEGAL
    ],
)
async def test_every_illegal_transition_is_refused_and_not_applied(
    repo: TaskRepository,
    mongo: AsyncMongoClient[dict[str, Any]],
    database: str,
    source: Any,
    target: Any,
) -> None:
    task_id = await _task_in(repo, mongo, database, source)
    with pytest.raises(FailedPrecondition) as refused:
        await repo.transition(task_id, [source], target)
    assert refused.value.reason == "ILLEGAL_TRANSITION"
    task, _ = await repo.get(task_id)
    assert task.status == source


async def test_a_transition_from_the_wrong_state_is_refused(
    repo: TaskRepository, mongo: AsyncMongoClient[dict[str, Any]], database: str
) -> None:
    task_id = await _task_in(repo, mongo, database, S.TASK_STATUS_SUCCEEDED)
    with pytest.raises(FailedPrecondition) as refused:
        await repo.transition(task_id, [S.TASK_STATUS_RUNNING], S.TASK_STATUS_FAILED)
    assert refused.value.reason == "STATUS_MISMATCH"
    assert refused.value.metadata["status"] == "succeeded"
    assert (await repo.get(task_id))[0].status == S.TASK_STATUS_SUCCEEDED


async def test_exactly_one_of_many_concurrent_claims_wins(
    repo: TaskRepository, mongo: AsyncMongoClient[dict[str, Any]], database: str
) -> None:
    for _ in range(5):
        task_id = await _task_in(repo, mongo, database, S.TASK_STATUS_QUEUED)

        async def claim(task_id: str = task_id) -> bool:
            try:
                await repo.transition(
                    task_id, [S.TASK_STATUS_QUEUED], S.TASK_STATUS_RUNNING, start_run=True
                )
            except FailedPrecondition:
                return False
            return True

        wins = await asyncio.gather(*(claim() for _ in range(10)))
        assert sum(wins) == 1
        task, _ = await repo.get(task_id)
        assert task.attempts == 1


async def test_a_stale_run_cannot_record_a_result(
    repo: TaskRepository, mongo: AsyncMongoClient[dict[str, Any]], database: str
) -> None:
    task_id = await _task_in(repo, mongo, database, S.TASK_STATUS_QUEUED)
    _, first_run = await repo.transition(
        task_id, [S.TASK_STATUS_QUEUED], S.TASK_STATUS_RUNNING, start_run=True
    )
    # The worker died; the redelivered message starts a second run of the same task.
    _, second_run = await repo.transition(
        task_id, [S.TASK_STATUS_RUNNING], S.TASK_STATUS_RUNNING, start_run=True
    )
    assert first_run != second_run
    with pytest.raises(FailedPrecondition) as refused:
        await repo.record_result(task_id, first_run, S.TaskResult(text="old"), S.Usage())
    assert refused.value.reason == "RUN_MISMATCH"
    done = await repo.record_result(task_id, second_run, S.TaskResult(text="new"), S.Usage())
    assert done.status == S.TASK_STATUS_SUCCEEDED
    assert done.result.text == "new"
    assert done.attempts == 2
    with pytest.raises(FailedPrecondition):
        await repo.record_result(task_id, second_run, S.TaskResult(text="again"), S.Usage())
