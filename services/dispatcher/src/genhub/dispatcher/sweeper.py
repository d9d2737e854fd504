"""The sweeper: finds tasks that fell between the cracks and puts them back on the road.

- pending past a grace period: inserted but never published (the gateway died) -> publish;
- running and untouched past a deadline: the worker vanished without a broker redelivery ->
  back to queued and published again, or failed once attempts are used up;
- queued and untouched for long: the message may be lost -> publish again (a duplicate is
  harmless: only one delivery can claim the task).

Every change is a compare-and-set, so several sweepers (one per worker replica) can run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from aio_pika.abc import AbstractChannel
from google.protobuf import timestamp_pb2

from genhub.common import topology
from genhub.common.errors import FailedPrecondition, GenHubError, NotFound
from genhub.common.store_client import TaskStoreClient
from genhub.common.topology import TaskMessage
from genhub.dispatcher import metrics
from genhub.dispatcher.config import DispatcherSettings
from genhub.store.v1 import task_store_pb2
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)
S = task_pb2
BATCH = 200


class Sweeper:
    """Periodic repair of one provider's tasks."""

    def __init__(
        self, settings: DispatcherSettings, store: TaskStoreClient, channel: AbstractChannel
    ) -> None:
        self._settings = settings
        self._store = store
        self._channel = channel

    async def run_forever(self) -> None:
        """Sweep every ``sweep_interval_seconds`` until cancelled."""
        while True:
            try:
                await self.sweep()
            except GenHubError as exc:
                log.warning("sweep skipped: %s", exc)
            await asyncio.sleep(self._settings.sweep_interval_seconds)

    async def sweep(self) -> int:
        """One pass; returns how many tasks it acted on."""
        s = self._settings
        acted = 0
        for task in await self._stale(S.TASK_STATUS_PENDING, s.pending_grace_seconds):
            acted += await self._republish(task, "pending")
        for task in await self._stale(S.TASK_STATUS_QUEUED, s.stale_queued_seconds):
            acted += await self._republish(task, "queued")
        for task in await self._stale(S.TASK_STATUS_RUNNING, s.stale_running_seconds):
            acted += await self._requeue_running(task)
        return acted

    async def _stale(
        self, status: task_pb2.TaskStatus.ValueType, older_than: float
    ) -> list[task_pb2.Task]:
        cutoff = timestamp_pb2.Timestamp()
        cutoff.FromDatetime(datetime.now(UTC) - timedelta(seconds=older_than))
        page = await self._store.list_tasks(
            task_store_pb2.ListTasksRequest(
                provider=self._settings.provider,
                statuses=[status],
                updated_before=cutoff,
                page_size=BATCH,
            )
        )
        return list(page.tasks)

    async def _republish(self, task: task_pb2.Task, was: str) -> int:
        await topology.publish(
            self._channel, task.provider, TaskMessage(task.task_id), priority=task.priority
        )
        if task.status == S.TASK_STATUS_PENDING:
            with contextlib.suppress(FailedPrecondition, NotFound):
                await self._store.transition(
                    task.task_id, [S.TASK_STATUS_PENDING], S.TASK_STATUS_QUEUED
                )
        metrics.SWEPT.labels(task.provider, f"republished_{was}").inc()
        log.info("sweeper republished a %s task", was, extra={"task_id": task.task_id})
        return 1

    async def _requeue_running(self, task: task_pb2.Task) -> int:
        error = S.TaskError(
            code="WORKER_LOST", message="the run stopped reporting; retried", retryable=True
        )
        out_of_attempts = task.attempts >= self._settings.max_attempts
        try:
            await self._store.transition(
                task.task_id,
                [S.TASK_STATUS_RUNNING],
                S.TASK_STATUS_FAILED if out_of_attempts else S.TASK_STATUS_QUEUED,
                error=error,
            )
        except (FailedPrecondition, NotFound):
            return 0
        if out_of_attempts:
            metrics.SWEPT.labels(task.provider, "failed_running").inc()
            return 1
        await topology.publish(
            self._channel,
            task.provider,
            TaskMessage(task.task_id, retry=task.attempts),
            priority=task.priority,
        )
        metrics.SWEPT.labels(task.provider, "requeued_running").inc()
        log.warning("sweeper requeued a stale running task", extra={"task_id": task.task_id})
        return 1
