"""Runs the lifecycle operations of ``lifecycle.py`` against a repository.

:class:`Lifecycle` is what task-store's servicer calls (and what worker-policy tests call
in-process, over the in-memory twins): each method takes one compare-and-set step, publishes
the step's message through the outbox, then tells the transition hooks (status events, metrics,
webhooks) what happened. A refused step raises FailedPrecondition naming why; a claim that
cannot start a run answers with a skip reason instead, because skipping is a normal outcome for
a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from genhub.common.errors import FailedPrecondition, NotFound
from genhub.common.ids import new_id
from genhub.common.store_client import Claim
from genhub.store.v1 import task_store_pb2 as pb
from genhub.taskstore import documents, lifecycle
from genhub.taskstore.lifecycle import Step
from genhub.taskstore.outbox import Outbox
from genhub.taskstore.task_repository import Document, TaskRepository
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    """What a hook hears: the operation that ran and the task right after it."""

    operation: str
    task: task_pb2.Task


TransitionHook = Callable[[Transition], Awaitable[None]]


def _error(code: str, message: str, *, retryable: bool = False) -> Document:
    return documents.as_dict(task_pb2.TaskError(code=code, message=message, retryable=retryable))


class Lifecycle:
    """The task lifecycle over one repository and one outbox relay."""

    def __init__(
        self,
        repository: TaskRepository,
        outbox: Outbox,
        hooks: Sequence[TransitionHook] = (),
        clock: Callable[[], datetime] = documents.now,
    ) -> None:
        self.repository = repository
        self._outbox = outbox
        self._hooks = list(hooks)
        self._clock = clock

    def add_hook(self, hook: TransitionHook) -> None:
        """Subscribe ``hook`` to every transition."""
        self._hooks.append(hook)

    async def _notify(self, operation: str, doc: Document) -> task_pb2.Task:
        return await self._tell(operation, documents.from_document(doc))

    async def _tell(self, operation: str, task: task_pb2.Task) -> task_pb2.Task:
        for hook in self._hooks:
            try:
                await hook(Transition(operation, task))
            except Exception:
                # Hooks are observers: one failing must not undo or block a committed change.
                log.exception("transition hook failed", extra={"task_id": task.task_id})
        return task

    async def _take(self, task_id: str, step: Step) -> task_pb2.Task | None:
        """Apply ``step``; the task after it, or None when its guard did not hold."""
        taken = await self._step(task_id, step)
        return taken[1] if taken is not None else None

    async def _step(self, task_id: str, step: Step) -> tuple[Document, task_pb2.Task] | None:
        step = step.with_outbox(self._outbox.relay)
        doc = await self.repository.update(task_id, step.guard, step.change)
        if doc is None:
            return None
        if step.publish is not None:
            await self._outbox.publish(doc, step.publish)
        return doc, await self._notify(step.operation, doc)

    async def _apply(self, task_id: str, step: Step) -> task_pb2.Task:
        """Apply ``step`` or raise why not (NotFound; FailedPrecondition RUN_MISMATCH or
        STATUS_MISMATCH with the task's status in its metadata)."""
        task = await self._take(task_id, step)
        if task is not None:
            return task
        current = await self.repository.get(task_id)
        if current is None:
            raise NotFound(f"task {task_id} not found", metadata={"task_id": task_id})
        status = str(current["status"])
        if status in step.guard.statuses:
            raise FailedPrecondition(
                f"task {task_id} belongs to another run",
                reason="RUN_MISMATCH",
                metadata={"status": status},
            )
        wanted = "|".join(sorted(step.guard.statuses))
        raise FailedPrecondition(
            f"task {task_id} is {status}, not {wanted}",
            reason="STATUS_MISMATCH",
            metadata={"status": status},
        )

    async def create(
        self, task: task_pb2.Task, sealed_credentials: str = ""
    ) -> tuple[task_pb2.Task, bool]:
        """Store ``task`` as queued and publish its run message; a repeated (user, idempotency
        key) returns the earlier task and False, publishing nothing."""
        stored = task_pb2.Task()
        stored.CopyFrom(task)
        stored.task_id = new_id()
        now = self._clock()
        doc = lifecycle.new_document(documents.to_document(stored), now)
        doc["outbox"] = self._outbox.relay
        doc, created = await self.repository.insert(doc)
        if not created:
            return documents.from_document(doc), False
        await self._outbox.publish(doc, lifecycle.create(sealed_credentials))
        return await self._notify("create", doc), True

    async def get(self, task_id: str) -> task_pb2.Task:
        """A task; NotFound when there is none."""
        doc = await self.repository.get(task_id)
        if doc is None:
            raise NotFound(f"task {task_id} not found", metadata={"task_id": task_id})
        return documents.from_document(doc)

    async def claim(
        self,
        task_id: str,
        *,
        run_id: str = "",
        lease: float,
        max_attempts: int,
        provider: str = "",
    ) -> Claim:
        """Start a run (or continue ``run_id``); see ClaimTaskRequest for the skip reasons."""
        now = self._clock()
        if run_id:
            step = lifecycle.resume(run_id, now, lease)
        else:
            step = lifecycle.claim(now, lease, max_attempts, provider)
        taken = await self._step(task_id, step)
        if taken is not None:
            doc, task = taken
            return Claim(task, str(doc["run_id"]))
        return await self._skip(task_id, run_id, now, provider)

    async def _skip(self, task_id: str, run_id: str, now: datetime, provider: str) -> Claim:
        doc = await self.repository.get(task_id)
        if doc is None:
            return Claim(task_pb2.Task(), "", pb.SKIP_REASON_NOT_FOUND)
        task = documents.from_document(doc)
        status = doc["status"]
        if status == "cancelled":
            return Claim(task, "", pb.SKIP_REASON_CANCELLED)
        if status in ("succeeded", "failed", "expired"):
            return Claim(task, "", pb.SKIP_REASON_FINISHED)
        if provider and not run_id and documents.route(doc)[0] != provider:
            return Claim(task, "", pb.SKIP_REASON_REROUTED)
        if run_id and (status != "running" or doc.get("run_id") != run_id):
            return Claim(task, "", pb.SKIP_REASON_RUN_ENDED)
        lease = doc.get("lease_until")
        if status == "running" and lease is not None and lease >= now:
            return Claim(task, "", pb.SKIP_REASON_LEASED, (lease - now).total_seconds())
        if status == "running":
            # The lease lapsed and the attempts are used up: every run died with its worker.
            error = _error(
                "WORKER_CRASHED", f"the worker running it stopped {doc.get('attempts', 0)} times"
            )
            failed = await self._take(task_id, lifecycle.fail_lost(doc["run_id"], error, now))
            if failed is not None:
                return Claim(failed, "", pb.SKIP_REASON_EXHAUSTED)
        # It changed under us (another claim won): say so as a lease, and look again later.
        return Claim(task, "", pb.SKIP_REASON_LEASED, 1.0)

    async def record_job(
        self,
        task_id: str,
        run_id: str,
        job_id: str,
        *,
        poll_after: float,
        lease: float,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """See TaskLifecycle.record_job."""
        step = lifecycle.record_job(
            run_id, job_id, self._clock(), lease, poll_after, sealed_credentials
        )
        return await self._apply(task_id, step)

    async def heartbeat(
        self,
        task_id: str,
        run_id: str,
        *,
        lease: float,
        poll_after: float | None = None,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """See TaskLifecycle.heartbeat."""
        step = lifecycle.heartbeat(run_id, self._clock(), lease, poll_after, sealed_credentials)
        return await self._apply(task_id, step)

    async def complete(
        self, task_id: str, run_id: str, result: task_pb2.TaskResult, usage: task_pb2.Usage
    ) -> task_pb2.Task:
        """See TaskLifecycle.complete."""
        step = lifecycle.complete(
            run_id, documents.as_dict(result), documents.as_dict(usage), self._clock()
        )
        return await self._apply(task_id, step)

    async def schedule_retry(
        self,
        task_id: str,
        run_id: str,
        error: task_pb2.TaskError,
        *,
        delay: float,
        new_job: bool = False,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """See TaskLifecycle.schedule_retry."""
        step = lifecycle.schedule_retry(
            run_id, documents.as_dict(error), delay, new_job, self._clock(), sealed_credentials
        )
        return await self._apply(task_id, step)

    async def fail(self, task_id: str, run_id: str, error: task_pb2.TaskError) -> task_pb2.Task:
        """See TaskLifecycle.fail."""
        step = lifecycle.fail(run_id, documents.as_dict(error), self._clock())
        return await self._apply(task_id, step)

    async def cancel(self, task_id: str) -> task_pb2.Task:
        """Cancel an unfinished task; FailedPrecondition (TASK_FINISHED) once it finished."""
        task = await self._take(task_id, lifecycle.cancel(self._clock()))
        if task is not None:
            return task
        current = await self.get(task_id)
        status = task_pb2.TaskStatus.Name(current.status)
        raise FailedPrecondition(
            f"task {task_id} already finished ({status}); only pending, queued or running "
            "tasks can be cancelled",
            reason="TASK_FINISHED",
            metadata={"status": status},
        )

    async def retry(self, task_id: str) -> task_pb2.Task:
        """Queue a failed task again with a fresh attempt budget; FailedPrecondition
        (NOT_FAILED) unless it failed."""
        task = await self._take(task_id, lifecycle.retry(self._clock()))
        if task is not None:
            return task
        current = await self.get(task_id)
        status = task_pb2.TaskStatus.Name(current.status)
        raise FailedPrecondition(
            f"task {task_id} is {status}; only failed tasks can be retried",
            reason="NOT_FAILED",
            metadata={"status": status},
        )

    async def expire(self, task_id: str) -> task_pb2.Task:
        """succeeded -> expired, once its stored media is purged for age; FailedPrecondition
        (NOT_SUCCEEDED, with the status in its metadata) for any other status."""
        task = await self._take(task_id, lifecycle.expire(self._clock()))
        if task is not None:
            return task
        current = await self.get(task_id)
        status = task_pb2.TaskStatus.Name(current.status)
        raise FailedPrecondition(
            f"task {task_id} is {status}; only succeeded tasks can expire",
            reason="NOT_SUCCEEDED",
            metadata={"status": status},
        )

    async def reroute(
        self,
        task_id: str,
        run_id: str,
        target: task_pb2.ModelRef,
        error: task_pb2.TaskError,
    ) -> task_pb2.Task:
        """See TaskLifecycle.reroute: FailedPrecondition NOT_A_FALLBACK when ``target`` is not
        one of the task's fallbacks; RUN_MISMATCH or STATUS_MISMATCH as for any run step."""
        current = await self.get(task_id)
        if not any(
            f.provider == target.provider and f.model == target.model for f in current.fallbacks
        ):
            raise FailedPrecondition(
                f"{target.provider}/{target.model} is not a fallback of task {task_id}",
                reason="NOT_A_FALLBACK",
                metadata={"provider": target.provider, "model": target.model},
            )
        step = lifecycle.reroute(
            run_id, target.provider, target.model, documents.as_dict(error), self._clock()
        )
        return await self._apply(task_id, step)

    async def requeue_lost_run(self, doc: Document) -> task_pb2.Task | None:
        """Hand back the run of ``doc`` if its lease is still lapsed (the reaper)."""
        error = _error("WORKER_LOST", "the run stopped reporting; retried", retryable=True)
        step = lifecycle.requeue_lost(str(doc["run_id"]), error, self._clock())
        return await self._take(doc["_id"], step)

    async def fail_lost_run(self, doc: Document) -> task_pb2.Task | None:
        """Fail the run of ``doc`` whose lease lapsed with its attempts used up (the reaper)."""
        error = _error("WORKER_LOST", f"the run stopped reporting {doc.get('attempts', 0)} times")
        return await self._take(
            doc["_id"], lifecycle.fail_lost(str(doc["run_id"]), error, self._clock())
        )

    async def republish(self, doc: Document, untouched_since: datetime) -> task_pb2.Task | None:
        """Publish again a task waiting since before ``untouched_since`` (the reaper)."""
        step = lifecycle.republish(str(doc["status"]), untouched_since, self._clock())
        return await self._take(doc["_id"], step)

    async def delete(self, task_id: str) -> Document:
        """Remove a task; NotFound when there is none. Returns the removed document."""
        doc = await self.repository.delete(task_id)
        if doc is None:
            raise NotFound(f"task {task_id} not found", metadata={"task_id": task_id})
        # A task with no status announces the deletion to watchers.
        await self._tell("delete", task_pb2.Task(task_id=task_id))
        return doc
