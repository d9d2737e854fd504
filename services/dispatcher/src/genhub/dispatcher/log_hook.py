"""The worker's log lines, as a hook: one line per outcome, with task id, provider, model."""

from __future__ import annotations

import logging

from genhub.common.task_queue import Delivery
from genhub.dispatcher.hooks import Run, WorkerHook
from genhub.providers.sdk import ProviderError
from genhub.v1 import task_pb2

log = logging.getLogger("genhub.dispatcher.tasks")


def _fields(run: Run, **more: object) -> dict[str, object]:
    return {"provider": run.provider, "model": run.task.model, "attempt": run.task.attempts, **more}


class LogHook(WorkerHook):
    """Logs completions, retries, failures, dead letters and skips."""

    async def on_complete(self, run: Run, task: task_pb2.Task) -> None:
        """One info line per success."""
        log.info("task succeeded", extra=_fields(run))

    async def on_retry(self, run: Run, error: ProviderError, delay: float) -> None:
        """One warning per retry, with its class and delay."""
        log.warning(
            "attempt failed, retrying",
            extra=_fields(
                run, code=error.code, error_class=error.error_class.value, delay_seconds=delay
            ),
        )

    async def on_fail(self, run: Run, error: ProviderError) -> None:
        """One warning per failed task."""
        log.warning(
            "task failed",
            extra=_fields(run, code=error.code, error_class=error.error_class.value),
        )

    async def on_dead_letter(self, delivery: Delivery, reason: str) -> None:
        """One warning per dead letter."""
        log.warning("message dead-lettered", extra={"reason": reason})

    async def on_skip(self, delivery: Delivery, reason: str) -> None:
        """One info line per skip."""
        log.info("message skipped", extra={"reason": reason})
