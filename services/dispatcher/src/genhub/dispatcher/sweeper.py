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
import time
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
            except Exception:
                # Whatever failed (store, broker), the next pass tries again: a sweeper that
                # died here would leave every later orphan behind.
                log.exception("sweep pass failed")
            await asyncio.sleep(self._settings.sweep_interval_seconds)

    async def sweep(self) -> int:
        """One pass; returns how many tasks it acted on."""
        s = self._settings
        acted = 0
        rules = (
            (S.TASK_STATUS_PENDING, s.pending_grace_seconds),
            (S.TASK_STATUS_QUEUED, s.stale_queued_seconds),
            (S.TASK_STATUS_RUNNING, s.stale_running_seconds),
        )
        for status, older_than in rules:
            for task in await self._stale(status, older_than):
                try:
                    if status == S.TASK_STATUS_RUNNING:
                        acted += await self._requeue_running(task, older_than)
                    else:
                        acted += await self._republish(task, S.TaskStatus.Name(status))
                except GenHubError as exc:
                    log.warning("sweeper skipped a task: %s", exc, extra={"task_id": task.task_id})
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
        # pending -> queued; queued -> queued stamps the republish, so the same task is not
        # republished again on every pass while it waits in a long backlog.
        with contextlib.suppress(FailedPrecondition, NotFound):
            await self._store.transition(task.task_id, [task.status], S.TASK_STATUS_QUEUED)
        metrics.SWEPT.labels(task.provider, f"republished_{was}").inc()
        log.info("sweeper republished a %s task", was, extra={"task_id": task.task_id})
        return 1

    async def _requeue_running(self, listed: task_pb2.Task, older_than: float) -> int:
        # Re-read: another sweeper may have requeued it and a worker claimed it since the list;
        # only a run that is still stale, and still the same run, is taken away.
        try:
            task, run_id = await self._store.get(listed.task_id)
        except NotFound:
            return 0
        age = time.time() - task.update_time.ToDatetime(tzinfo=UTC).timestamp()
        if task.status != S.TASK_STATUS_RUNNING or age < older_than:
            return 0
        error = S.TaskError(
            code="WORKER_LOST", message="the run stopped reporting; retried", retryable=True
        )
        if task.attempts >= self._settings.max_attempts:
            with contextlib.suppress(FailedPrecondition, NotFound):
                await self._store.transition(
                    task.task_id,
                    [S.TASK_STATUS_RUNNING],
                    S.TASK_STATUS_FAILED,
                    expected_run_id=run_id,
                    error=error,
                )
                metrics.SWEPT.labels(task.provider, "failed_running").inc()
            return 1
        # Publish first (delayed, so the queued status is written before it is delivered), then
        # hand the task back: a crash in between leaves it running and stale for the next pass.
        await topology.publish(
            self._channel,
            task.provider,
            TaskMessage(task.task_id, retry=task.attempts),
            priority=task.priority,
            delay=1.0,
        )
        try:
            await self._store.transition(
                task.task_id,
                [S.TASK_STATUS_RUNNING],
                S.TASK_STATUS_QUEUED,
                expected_run_id=run_id,
                error=error,
            )
        except (FailedPrecondition, NotFound):
            return 0  # it moved on; the extra message will be skipped
        metrics.SWEPT.labels(task.provider, "requeued_running").inc()
        log.warning("sweeper requeued a stale running task", extra={"task_id": task.task_id})
        return 1
