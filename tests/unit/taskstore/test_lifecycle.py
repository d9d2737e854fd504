"""The task lifecycle over the in-memory twins: every operation's from-states, field changes,
attempts, leases, skip reasons and outbox messages, in milliseconds."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from genhub.common.errors import FailedPrecondition, NotFound
from genhub.common.memory_queue import MemoryTaskQueue
from genhub.common.topology import MessageKind
from genhub.store.v1 import task_store_pb2 as pb
from genhub.taskstore import documents, lifecycle, states
from genhub.taskstore.memory_task_repository import MemoryTaskRepository
from genhub.taskstore.operations import Lifecycle, Transition
from genhub.taskstore.outbox import Outbox
from genhub.v1 import task_pb2

S = task_pb2
ALL = list(states.NAMES)
LEGAL = {
    ("pending", "queued"),
    ("pending", "running"),
    ("pending", "cancelled"),
    ("queued", "queued"),
    ("queued", "running"),
    ("queued", "cancelled"),
    ("running", "running"),
    ("running", "queued"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("succeeded", "expired"),
    ("failed", "queued"),
}
LEASE = 30.0
FALLBACK = S.ModelRef(provider="backup", model="backup-text")


class World:
    """A lifecycle over the twins, with what it published and told its hooks."""

    def __init__(self) -> None:
        self.repo = MemoryTaskRepository()
        self.queue = MemoryTaskQueue()
        self.outbox = Outbox(self.repo, self.queue)
        self.heard: list[Transition] = []

        async def hear(transition: Transition) -> None:
            self.heard.append(transition)

        self.lifecycle = Lifecycle(self.repo, self.outbox, [hear])

    async def create(self, prompt: str = "p", **fields: Any) -> task_pb2.Task:
        task = S.Task(
            type=S.TASK_TYPE_TEXT,
            provider="demo",
            model="demo-text",
            text=S.TextSpec(prompt=prompt),
            **fields,
        )
        created, _ = await self.lifecycle.create(task)
        return created

    async def force(self, task_id: str, **fields: Any) -> None:
        """Put a task in a state (as the repository would hold it)."""
        self.repo.tasks[task_id].update(fields)

    def published(self) -> list[tuple[str, MessageKind, str]]:
        return [(m.task_id, m.kind, m.run_id) for m in self.queue.ready("demo")]


@pytest.fixture
def world() -> World:
    return World()


def test_the_table_is_exactly_the_documented_state_machine() -> None:
    table = {
        (states.NAMES[a], states.NAMES[b])
        for a, b in itertools.product(ALL, ALL)
        if states.is_legal(a, b)
    }
    assert table == LEGAL


def _operations(now: Any) -> dict[str, tuple[lifecycle.Step, set[str]]]:
    """Every step with the statuses it may start from (a run id "r" where it needs one)."""
    error = {"code": "X"}
    return {
        "claim": (lifecycle.claim(now, LEASE, 5), {"pending", "queued"}),
        "resume": (lifecycle.resume("r", now, LEASE), {"running"}),
        "record_job": (lifecycle.record_job("r", "job", now, LEASE, 1.0), {"running"}),
        "heartbeat": (lifecycle.heartbeat("r", now, LEASE, None), {"running"}),
        "complete": (lifecycle.complete("r", {}, {}, now), {"running"}),
        "schedule_retry": (lifecycle.schedule_retry("r", error, 1.0, False, now), {"running"}),
        "fail": (lifecycle.fail("r", error, now), {"running"}),
        "cancel": (lifecycle.cancel(now), {"pending", "queued", "running"}),
        "retry": (lifecycle.retry(now), {"failed"}),
        "expire": (lifecycle.expire(now), {"succeeded"}),
        "reroute": (lifecycle.reroute("r", "backup", "backup-text", error, now), {"running"}),
    }


@pytest.mark.parametrize(
    ("operation", "status"),
    list(itertools.product(_operations(documents.now()), states.BY_NAME)),
)
async def test_each_operation_runs_from_its_states_only_and_takes_a_legal_edge(
    world: World, operation: str, status: str
) -> None:
    task = await world.create(fallbacks=[FALLBACK])
    # A live lease, so "running" is never up for takeover here.
    lease = documents.now() + timedelta(minutes=1)
    await world.force(task.task_id, status=status, run_id="r", lease_until=lease)
    step, sources = _operations(documents.now())[operation]
    before = dict(world.repo.tasks[task.task_id])
    updated = await world.repo.update(task.task_id, step.guard, step.change)
    if status in sources:
        assert updated is not None
        assert updated["status"] == step.to_status
        assert states.is_legal(states.BY_NAME[status], states.BY_NAME[step.to_status])
    else:
        assert updated is None
        assert world.repo.tasks[task.task_id] == before


async def test_create_stores_queued_and_publishes_a_run_message(world: World) -> None:
    task = await world.create("hello", user_id="alice")
    assert task.status == S.TASK_STATUS_QUEUED
    assert task.attempts == 0
    assert world.published() == [(task.task_id, MessageKind.RUN, "")]
    assert [t.operation for t in world.heard] == ["create"]


async def test_a_repeated_idempotency_key_returns_the_first_and_publishes_nothing(
    world: World,
) -> None:
    first = await world.create(user_id="alice", idempotency_key="k")
    again, created = await world.lifecycle.create(
        S.Task(
            type=S.TASK_TYPE_TEXT,
            provider="demo",
            model="demo-text",
            text=S.TextSpec(prompt="p"),
            user_id="alice",
            idempotency_key="k",
        )
    )
    assert not created and again.task_id == first.task_id
    assert len(world.published()) == 1


async def test_the_happy_path_costs_three_writes(world: World) -> None:
    task = await world.create()
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    done = await world.lifecycle.complete(
        task.task_id, claim.run_id, S.TaskResult(text="hi"), S.Usage(total_tokens=2)
    )
    assert done.status == S.TASK_STATUS_SUCCEEDED
    assert done.result.text == "hi" and done.usage.total_tokens == 2
    assert world.repo.writes == 3
    assert [t.operation for t in world.heard] == ["create", "claim", "complete"]


async def test_a_claim_counts_an_attempt_issues_a_run_and_clears_the_outbox_stamp(
    world: World,
) -> None:
    task = await world.create()
    assert world.repo.tasks[task.task_id]["outbox"] == world.outbox.relay
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    assert claim.claimed and claim.run_id
    assert claim.task.status == S.TASK_STATUS_RUNNING and claim.task.attempts == 1
    assert claim.task.HasField("start_time")
    assert world.repo.tasks[task.task_id]["outbox"] == ""


async def test_a_live_lease_refuses_a_second_claim_and_says_when_to_look_again(
    world: World,
) -> None:
    task = await world.create()
    first = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    second = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    assert not second.claimed
    assert second.skip == pb.SKIP_REASON_LEASED
    assert 0 < second.retry_after <= LEASE
    assert world.repo.tasks[task.task_id]["run_id"] == first.run_id
    assert world.repo.tasks[task.task_id]["attempts"] == 1


async def test_a_lapsed_lease_is_taken_over_and_the_old_run_cannot_record(world: World) -> None:
    task = await world.create()
    old = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    await world.force(task.task_id, lease_until=documents.now() - timedelta(seconds=1))
    new = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    assert new.claimed and new.run_id != old.run_id and new.task.attempts == 2
    with pytest.raises(FailedPrecondition) as refused:
        await world.lifecycle.complete(
            task.task_id, old.run_id, S.TaskResult(text="old"), S.Usage()
        )
    assert refused.value.reason == "RUN_MISMATCH"
    done = await world.lifecycle.complete(
        task.task_id, new.run_id, S.TaskResult(text="new"), S.Usage()
    )
    assert done.result.text == "new"
    with pytest.raises(FailedPrecondition) as again:
        await world.lifecycle.complete(task.task_id, new.run_id, S.TaskResult(text="x"), S.Usage())
    assert again.value.reason == "STATUS_MISMATCH"
    assert again.value.metadata["status"] == "succeeded"


async def test_runs_that_kept_dying_are_failed_not_restarted(world: World) -> None:
    task = await world.create()
    await world.force(
        task.task_id,
        status="running",
        run_id="r",
        attempts=3,
        lease_until=documents.now() - timedelta(seconds=1),
    )
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    assert claim.skip == pb.SKIP_REASON_EXHAUSTED
    assert claim.task.status == S.TASK_STATUS_FAILED
    assert claim.task.error.code == "WORKER_CRASHED"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("succeeded", pb.SKIP_REASON_FINISHED),
        ("failed", pb.SKIP_REASON_FINISHED),
        ("cancelled", pb.SKIP_REASON_CANCELLED),
    ],
)
async def test_finished_tasks_are_skipped_with_their_reason(
    world: World, status: str, reason: int
) -> None:
    task = await world.create()
    await world.force(task.task_id, status=status)
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    assert claim.skip == reason and claim.task.task_id == task.task_id


async def test_a_deleted_task_is_skipped_as_not_found(world: World) -> None:
    task = await world.create()
    await world.lifecycle.delete(task.task_id)
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    assert claim.skip == pb.SKIP_REASON_NOT_FOUND
    with pytest.raises(NotFound):
        await world.lifecycle.delete(task.task_id)
    assert world.heard[-1].operation == "delete"
    assert world.heard[-1].task.status == S.TASK_STATUS_UNSPECIFIED


async def test_a_provider_job_is_recorded_then_polled_by_its_run(world: World) -> None:
    task = await world.create()
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    recorded = await world.lifecycle.record_job(
        task.task_id, claim.run_id, "job-1", poll_after=2.0, lease=LEASE
    )
    assert recorded.provider_job_id == "job-1"
    assert world.queue.delayed == 1  # the poll waits out its delay
    resumed = await world.lifecycle.claim(
        task.task_id, run_id=claim.run_id, lease=LEASE, max_attempts=3
    )
    assert resumed.claimed and resumed.run_id == claim.run_id
    assert resumed.task.attempts == 1  # continuing a run is not a new attempt
    stale = await world.lifecycle.claim(task.task_id, run_id="other", lease=LEASE, max_attempts=3)
    assert stale.skip == pb.SKIP_REASON_RUN_ENDED


async def test_a_retry_is_scheduled_with_its_delay_and_may_forget_the_job(world: World) -> None:
    task = await world.create()
    world.queue.ready("demo")
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    await world.lifecycle.record_job(task.task_id, claim.run_id, "job-1", poll_after=1, lease=LEASE)
    error = S.TaskError(code="EMPTY_RESULT", retryable=True)
    queued = await world.lifecycle.schedule_retry(
        task.task_id, claim.run_id, error, delay=5.0, new_job=True
    )
    assert queued.status == S.TASK_STATUS_QUEUED
    assert queued.error.code == "EMPTY_RESULT"
    assert queued.provider_job_id == ""
    assert world.queue.delayed == 2  # the poll, and the retry


async def test_cancel_every_unfinished_state_and_refuse_finished_ones(world: World) -> None:
    for status in ("pending", "queued", "running"):
        task = await world.create()
        await world.force(task.task_id, status=status)
        cancelled = await world.lifecycle.cancel(task.task_id)
        assert cancelled.status == S.TASK_STATUS_CANCELLED
        assert cancelled.HasField("finish_time")
    done = await world.create()
    await world.force(done.task_id, status="succeeded")
    with pytest.raises(FailedPrecondition) as refused:
        await world.lifecycle.cancel(done.task_id)
    assert refused.value.reason == "TASK_FINISHED"
    assert refused.value.metadata["status"] == "TASK_STATUS_SUCCEEDED"


async def test_an_operator_retry_requeues_a_failed_task_with_a_fresh_budget(world: World) -> None:
    task = await world.create()
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=1)
    await world.lifecycle.fail(task.task_id, claim.run_id, S.TaskError(code="X"))
    retried = await world.lifecycle.retry(task.task_id)
    assert retried.status == S.TASK_STATUS_QUEUED and retried.attempts == 0
    assert not retried.HasField("finish_time")
    assert world.published()[-1] == (task.task_id, MessageKind.RUN, "")
    with pytest.raises(FailedPrecondition) as refused:
        await world.lifecycle.retry(task.task_id)
    assert refused.value.reason == "NOT_FAILED"


async def test_expire_moves_a_succeeded_task_keeping_its_result_record(world: World) -> None:
    task = await world.create()
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=1)
    result = S.TaskResult(images=[S.GeneratedImage(media=S.StoredMedia(media_id="m", sha256="ab"))])
    done = await world.lifecycle.complete(task.task_id, claim.run_id, result, S.Usage(images=1))
    world.heard.clear()
    expired = await world.lifecycle.expire(task.task_id)
    assert expired.status == S.TASK_STATUS_EXPIRED
    assert expired.result == done.result and expired.finish_time == done.finish_time
    assert [(t.operation, t.task.status) for t in world.heard] == [
        ("expire", S.TASK_STATUS_EXPIRED)
    ]
    with pytest.raises(FailedPrecondition) as again:
        await world.lifecycle.expire(task.task_id)
    assert again.value.reason == "NOT_SUCCEEDED"
    assert again.value.metadata["status"] == "TASK_STATUS_EXPIRED"
    with pytest.raises(NotFound):
        await world.lifecycle.expire("nope")


async def test_a_broker_outage_does_not_fail_a_create_and_the_message_follows(
    world: World,
) -> None:
    world.queue.available = False
    task = await world.create()
    assert task.status == S.TASK_STATUS_QUEUED
    assert world.outbox.unsent == 1 and world.published() == []
    world.queue.available = True
    assert await world.outbox.flush() == 0
    assert world.published() == [(task.task_id, MessageKind.RUN, "")]


async def test_a_reroute_queues_the_task_for_its_fallback_with_a_fresh_budget(
    world: World,
) -> None:
    task = await world.create(fallbacks=[FALLBACK])
    assert (task.served_by.provider, task.served_by.model) == ("demo", "demo-text")
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    why = S.TaskError(code="PROVIDER_CIRCUIT_OPEN", retryable=True)
    moved = await world.lifecycle.reroute(task.task_id, claim.run_id, FALLBACK, why)
    assert moved.status == S.TASK_STATUS_QUEUED and moved.attempts == 0
    assert (moved.provider, moved.model) == ("demo", "demo-text")  # the request is kept
    assert moved.served_by == FALLBACK
    assert moved.error.code == "PROVIDER_CIRCUIT_OPEN"
    assert [m.task_id for m in world.queue.ready("backup")] == [task.task_id]
    assert len(world.queue.ready("demo")) == 1  # only the create's message
    assert world.heard[-1].operation == "reroute"
    # A stale message in the old provider's queue cannot start it there; the new provider's
    # worker claims it; the old run can no longer record anything.
    stale = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3, provider="demo")
    assert stale.skip == pb.SKIP_REASON_REROUTED
    again = await world.lifecycle.claim(
        task.task_id, lease=LEASE, max_attempts=3, provider="backup"
    )
    assert again.claimed and again.task.attempts == 1
    with pytest.raises(FailedPrecondition):
        await world.lifecycle.complete(task.task_id, claim.run_id, S.TaskResult(), S.Usage())


async def test_a_reroute_is_refused_off_the_fallback_list_or_for_another_run(
    world: World,
) -> None:
    task = await world.create(fallbacks=[FALLBACK])
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    why = S.TaskError(code="PROVIDER_CIRCUIT_OPEN")
    elsewhere = S.ModelRef(provider="openai", model="gpt-4o")
    with pytest.raises(FailedPrecondition) as refused:
        await world.lifecycle.reroute(task.task_id, claim.run_id, elsewhere, why)
    assert refused.value.reason == "NOT_A_FALLBACK"
    with pytest.raises(FailedPrecondition) as stale:
        await world.lifecycle.reroute(task.task_id, "another-run", FALLBACK, why)
    assert stale.value.reason == "RUN_MISMATCH"
    assert world.repo.tasks[task.task_id]["status"] == "running"


async def test_a_retry_after_a_reroute_starts_from_the_requested_provider(world: World) -> None:
    task = await world.create(fallbacks=[FALLBACK])
    claim = await world.lifecycle.claim(task.task_id, lease=LEASE, max_attempts=3)
    await world.lifecycle.reroute(task.task_id, claim.run_id, FALLBACK, S.TaskError(code="X"))
    second = await world.lifecycle.claim(
        task.task_id, lease=LEASE, max_attempts=3, provider="backup"
    )
    await world.lifecycle.fail(task.task_id, second.run_id, S.TaskError(code="Y"))
    retried = await world.lifecycle.retry(task.task_id)
    assert retried.served_by == S.ModelRef(provider="demo", model="demo-text")
    assert [m.task_id for m in world.queue.ready("demo")].count(task.task_id) == 2
