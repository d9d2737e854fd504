"""The worker's Prometheus metrics, as a hook. Task-level counts (created, finished, queue wait,
end to end) are task-store's, counted once at the transition; these are about the worker."""

from __future__ import annotations

from genhub.common.metrics import DEAD_LETTERS as DEAD_LETTERS
from genhub.common.metrics import PROVIDER_CALL_SECONDS as CALL_SECONDS
from genhub.common.metrics import PROVIDER_ERRORS as CALL_ERRORS
from genhub.common.metrics import TASK_RETRIES as RETRIES
from genhub.common.metrics import WORKER_CONCURRENCY_LIMIT as CONCURRENCY
from genhub.common.metrics import WORKER_IN_FLIGHT as IN_FLIGHT
from genhub.common.metrics import WORKER_SKIPPED as SKIPPED
from genhub.common.task_queue import Delivery
from genhub.dispatcher.hooks import Run, WorkerHook
from genhub.providers.sdk import ProviderError

# The series themselves are defined once, in genhub.common.metrics.
__all__ = [
    "CALL_ERRORS",
    "CALL_SECONDS",
    "CONCURRENCY",
    "DEAD_LETTERS",
    "IN_FLIGHT",
    "RETRIES",
    "SKIPPED",
    "MetricsHook",
]


class MetricsHook(WorkerHook):
    """Counts provider calls, retries, dead letters and skips."""

    def __init__(self, provider: str) -> None:
        self._provider = provider

    async def after_call(
        self, run: Run, operation: str, seconds: float, error: ProviderError | None
    ) -> None:
        """Call latency; errors by class."""
        CALL_SECONDS.labels(self._provider, run.task.model, operation).observe(seconds)
        if error is not None:
            CALL_ERRORS.labels(self._provider, run.task.model, error.error_class.value).inc()

    async def on_retry(self, run: Run, error: ProviderError, delay: float) -> None:
        """A retry."""
        RETRIES.labels(self._provider, run.task.model, error.error_class.value).inc()

    async def on_dead_letter(self, delivery: Delivery, reason: str) -> None:
        """A dead letter."""
        DEAD_LETTERS.labels(self._provider, reason).inc()

    async def on_skip(self, delivery: Delivery, reason: str) -> None:
        """A skipped message."""
        SKIPPED.labels(self._provider, reason).inc()
