"""The outbox relay: publishes the messages lifecycle steps intend, after their write.

A step that must put a message on a queue stamps the task with this relay's id (``outbox``) in
the same write as its state change; the relay then publishes (with a broker confirm) before the
operation answers. A claim clears the stamp. So the intent and the state change are one write,
and the happy path costs no extra write for publishing.

Failure handling:
- broker down: the message waits in memory and the relay retries every heartbeat; the operation
  still answers (the task is durable and will be published), so creates survive an outage;
- task-store dies: its relay's heartbeat (``relays`` collection, one write per interval) goes
  stale; after ``dead_after`` another task-store (or the restarted one) adopts the dead relay's
  stamped tasks and publishes each one's message again (run, or poll for a running job), then
  forgets the dead relay. Duplicates this may create are harmless: only one delivery can claim
  a run. Per-request credentials were never stored, so a task adopted this way fails with
  CREDENTIALS_UNAVAILABLE rather than running with the wrong key;
- clean stop: pending messages are flushed and the relay's heartbeat removed, so nothing is
  adopted (or duplicated) after a rolling update.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from genhub.common.errors import GenHubError
from genhub.common.ids import new_token
from genhub.common.task_queue import Priority, TaskQueue
from genhub.common.topology import MessageKind, TaskMessage
from genhub.taskstore import documents
from genhub.taskstore.lifecycle import Publish
from genhub.taskstore.task_repository import Document, TaskQuery, TaskRepository
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)
ADOPT_BATCH = 500


@dataclass(frozen=True)
class _Unsent:
    provider: str
    message: TaskMessage
    priority: Priority
    delay: float


def message_for(doc: Document, intent: Publish) -> tuple[str, TaskMessage, Priority]:
    """The (provider, message, priority) a step's intent publishes for task ``doc``: to the
    queue of the provider serving it (a fallback's, once re-routed)."""
    message = TaskMessage(doc["_id"], intent.kind, intent.run_id, intent.sealed_credentials)
    priority = documents.PRIORITY_BY_NAME.get(doc.get("priority", ""), task_pb2.PRIORITY_DEFAULT)
    return documents.route(doc)[0], message, priority


class Outbox:
    """This task-store process's relay."""

    def __init__(
        self,
        repository: TaskRepository,
        queue: TaskQueue,
        *,
        heartbeat_seconds: float = 10.0,
        dead_after_seconds: float = 60.0,
        clock: Callable[[], datetime] = documents.now,
    ) -> None:
        self.relay = new_token()
        self._repo = repository
        self._queue = queue
        self._heartbeat = heartbeat_seconds
        self._dead_after = timedelta(seconds=dead_after_seconds)
        self._clock = clock
        self._unsent: deque[_Unsent] = deque()

    @property
    def unsent(self) -> int:
        """Messages waiting for the broker."""
        return len(self._unsent)

    async def start(self) -> None:
        """Announce this relay (before any task is stamped with it)."""
        await self._repo.beat(self.relay, self._clock())

    async def publish(self, doc: Document, intent: Publish) -> None:
        """Publish ``intent`` for the task just written; keep it for later if the broker fails."""
        provider, message, priority = message_for(doc, intent)
        try:
            await self._queue.enqueue(provider, message, priority=priority, delay=intent.delay)
        except GenHubError as exc:
            log.warning(
                "publish deferred until the broker answers: %s", exc, extra={"task_id": doc["_id"]}
            )
            self._unsent.append(_Unsent(provider, message, priority, intent.delay))

    async def flush(self) -> int:
        """Publish what the broker refused earlier; returns how many are still waiting."""
        while self._unsent:
            item = self._unsent[0]
            try:
                await self._queue.enqueue(
                    item.provider, item.message, priority=item.priority, delay=item.delay
                )
            except GenHubError as exc:
                log.warning("%d messages still unsent: %s", len(self._unsent), exc)
                break
            self._unsent.popleft()
        return len(self._unsent)

    async def tick(self) -> None:
        """One heartbeat: announce, retry unsent messages, adopt relays that died."""
        now = self._clock()
        await self._repo.beat(self.relay, now)
        await self.flush()
        for relay, seen in (await self._repo.relays()).items():
            if relay != self.relay and seen < now - self._dead_after:
                await self.adopt(relay)

    async def run_forever(self) -> None:
        """Tick every heartbeat interval until cancelled; a failed tick is logged, not fatal."""
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self.tick()
            except GenHubError as exc:
                log.warning("outbox tick failed: %s", exc)

    async def adopt(self, relay: str) -> int:
        """Publish again every task stamped by dead ``relay``; returns how many."""
        published, before = 0, ""
        while True:
            docs = await self._repo.find(TaskQuery(outbox=relay), ADOPT_BATCH, before)
            for doc in docs:
                intent = _intent_for(doc)
                if intent is not None:
                    provider, message, priority = message_for(doc, intent)
                    await self._queue.enqueue(provider, message, priority=priority)
                    published += 1
            if len(docs) < ADOPT_BATCH:
                break
            before = docs[-1]["_id"]
        await self._repo.forget_relay(relay)
        log.warning(
            "adopted the outbox of a dead relay", extra={"relay": relay, "count": published}
        )
        return published

    async def close(self) -> None:
        """Flush; forget this relay when nothing is left unsent (else another adopts it)."""
        try:
            if await self.flush() == 0:
                await self._repo.forget_relay(self.relay)
        except GenHubError as exc:
            log.warning("outbox not closed cleanly: %s", exc)


def _intent_for(doc: Document) -> Publish | None:
    status = doc.get("status")
    if status in ("queued", "pending"):
        return Publish(MessageKind.RUN)
    if status == "running" and doc.get("provider_job_id") and doc.get("run_id"):
        return Publish(MessageKind.POLL, 0.0, str(doc["run_id"]))
    return None  # finished meanwhile, or a run the reaper will find by its lease
