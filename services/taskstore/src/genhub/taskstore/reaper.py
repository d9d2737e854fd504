"""The reaper: finds tasks that fell between the cracks and puts them back on the road.

- a run whose lease lapsed (its worker vanished, and no redelivery took it over): handed back
  to the queue, or failed (and its message dead-lettered) once its attempts are used up;
- a task queued and untouched for long (its message may be lost with a broker's disk):
  published again (a duplicate is harmless: only one delivery can claim a run);
- a ``pending`` task (written before task-store published its own messages) past a grace
  period: published and queued.

Each rule pages through every matching task (not a first batch), and every change is one of
the lifecycle's compare-and-set steps, so several task-store replicas may reap at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from genhub.common.errors import GenHubError
from genhub.common.task_queue import TaskQueue
from genhub.common.topology import MessageKind, TaskMessage
from genhub.taskstore import documents
from genhub.taskstore.operations import Lifecycle
from genhub.taskstore.task_repository import Document, TaskQuery

log = logging.getLogger(__name__)
BATCH = 200


class Reaper:
    """Periodic repair of every provider's tasks."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        queue: TaskQueue,
        *,
        stale_queued_seconds: float = 3600.0,
        pending_grace_seconds: float = 30.0,
    ) -> None:
        self._lifecycle = lifecycle
        self._repo = lifecycle.repository
        self._queue = queue
        self._stale_queued = timedelta(seconds=stale_queued_seconds)
        self._pending_grace = timedelta(seconds=pending_grace_seconds)

    async def run_forever(self, interval: float) -> None:
        """Reap every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                # Whatever failed (store, broker), the next pass tries again: a reaper that
                # died here would leave every later orphan behind.
                log.exception("reaper pass failed")

    async def sweep(self) -> int:
        """One pass over every rule; returns how many tasks it acted on."""
        now = documents.now()
        acted = 0
        async for doc in self._every(TaskQuery(statuses=("running",), lease_lapsed_at=now)):
            acted += await self._lost_run(doc)
        for status, age in (("queued", self._stale_queued), ("pending", self._pending_grace)):
            since = now - age
            async for doc in self._every(TaskQuery(statuses=(status,), updated_before=since)):
                acted += await self._republish(doc, since)
        return acted

    async def _every(self, query: TaskQuery) -> AsyncIterator[Document]:
        """Every task ``query`` selects, a page at a time (newest first)."""
        before = ""
        while True:
            page = await self._repo.find(query, BATCH, before)
            for doc in page:
                yield doc
            if len(page) < BATCH:
                return
            before = page[-1]["_id"]

    async def _republish(self, doc: Document, since: datetime) -> int:
        try:
            task = await self._lifecycle.republish(doc, since)
        except GenHubError as exc:
            log.warning("reaper skipped a task: %s", exc, extra={"task_id": doc["_id"]})
            return 0
        if task is None:
            return 0  # it moved on since the query
        log.warning("reaper republished a %s task", doc["status"], extra={"task_id": doc["_id"]})
        return 1

    async def _lost_run(self, doc: Document) -> int:
        exhausted = int(doc.get("attempts", 0)) >= int(doc.get("max_attempts") or 1)
        try:
            if not exhausted:
                requeued = await self._lifecycle.requeue_lost_run(doc)
                if requeued is not None:
                    log.warning("reaper requeued a lost run", extra={"task_id": doc["_id"]})
                return int(requeued is not None)
            failed = await self._lifecycle.fail_lost_run(doc)
        except GenHubError as exc:
            log.warning("reaper skipped a task: %s", exc, extra={"task_id": doc["_id"]})
            return 0
        if failed is None:
            return 0
        # Exhausted: the message joins the dead letters, where operators look for failures.
        try:
            await self._queue.dead_letter(
                failed.served_by.provider or failed.provider,
                TaskMessage(failed.task_id, MessageKind.RUN),
                priority=failed.priority,
            )
        except GenHubError as exc:
            log.warning("lost run failed but not dead-lettered: %s", exc)
        log.warning("reaper failed a run that kept stopping", extra={"task_id": failed.task_id})
        return 1
