"""Webhook events from the lifecycle: a transition hook that queues an event (through
``genhub.notifier.WebhookNotifier``) for every status change of a task that names a webhook
and wants that change (terminal only, or every change). Delivery is the ``genhub-notifier``
process's job; this hook only publishes, with a broker confirm.

Publishing failures are not silent: like the outbox relay's unsent messages (``outbox.py``), an
event the broker did not confirm is kept in memory and published again every heartbeat, in
order; while events wait, new ones queue behind them instead of waiting on a broker known to be
down. The gap (docs/webhooks.md, "Delivery"): these waiting events live in this process only,
so a task-store that dies while the broker is unreachable, or between a step's write and the
broker's confirm (one round trip), loses those events; the task documents are right, only the
notification is missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from genhub.notifier import events
from genhub.taskstore.operations import Transition
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)
# Operations that give a task a new status (or a new run); renewals (heartbeat, resume, a
# recorded job, a republish) are not status changes and send nothing.
STATUS_CHANGES = frozenset(
    {
        "create",
        "claim",
        "complete",
        "schedule_retry",
        "fail",
        "fail_lost",
        "requeue_lost",
        "cancel",
        "retry",
        "expire",
    }
)
MAX_UNSENT = 10_000


class Notifier(Protocol):
    """Queues a task's webhook event (``genhub.notifier.WebhookNotifier``)."""

    async def notify(self, task: task_pb2.Task) -> bool:
        """Queue the event of the task's current status if wanted; raise when not confirmed."""
        ...


class WebhookHook:
    """The transition hook (``Lifecycle`` calls it after each committed step)."""

    def __init__(self, notifier: Notifier, *, max_unsent: int = MAX_UNSENT) -> None:
        self._notifier = notifier
        self._unsent: deque[task_pb2.Task] = deque()
        self._max_unsent = max_unsent
        self.dropped = 0

    @property
    def unsent(self) -> int:
        """Events waiting for the broker."""
        return len(self._unsent)

    async def __call__(self, transition: Transition) -> None:
        """Queue the event of ``transition`` if the task's webhook wants it."""
        task = transition.task
        if transition.operation not in STATUS_CHANGES or not events.wanted(task):
            return
        if self._unsent:
            self._keep(task)  # behind the waiting ones: events of a task stay in order
            return
        try:
            await self._notifier.notify(task)
        except Exception as exc:  # any failure (connect, confirm): keep it for the next beat
            log.warning(
                "webhook event kept until the broker answers: %s",
                exc,
                extra={"task_id": task.task_id},
            )
            self._keep(task)

    def _keep(self, task: task_pb2.Task) -> None:
        if len(self._unsent) >= self._max_unsent:
            self._unsent.popleft()
            self.dropped += 1
            log.error("webhook backlog full: the oldest waiting event was dropped")
        self._unsent.append(task)

    async def flush(self) -> int:
        """Publish the waiting events in order; returns how many still wait."""
        while self._unsent:
            try:
                await self._notifier.notify(self._unsent[0])
            except Exception as exc:
                log.warning("%d webhook events still unsent: %s", len(self._unsent), exc)
                break
            self._unsent.popleft()
        return len(self._unsent)

    async def run_forever(self, interval: float) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.flush()

    async def close(self) -> None:
        """Flush once more; what still waits is lost with this process, and logged as such."""
        left = await self.flush()
        if left:
            log.error("task-store stopped with %d webhook events unsent", left)
