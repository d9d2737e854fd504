"""The worker's Prometheus metrics, as a hook. Task-level counts (created, finished, queue wait,
end to end) are task-store's, counted once at the transition; these are about the worker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from genhub.common.task_queue import Delivery
from genhub.dispatcher.hooks import Run, WorkerHook
from genhub.providers.sdk import ProviderError

CALL_SECONDS = Histogram(
    "genhub_provider_call_seconds",
    "Provider call latency, by call (generate, submit, poll, cancel).",
    ["provider", "model", "call"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
CALL_ERRORS = Counter(
    "genhub_provider_errors",
    "Failed provider calls, by GenHub error class.",
    ["provider", "model", "error_class"],
)
RETRIES = Counter(
    "genhub_task_retries",
    "Retries scheduled, by error class.",
    ["provider", "model", "error_class"],
)
DEAD_LETTERS = Counter(
    "genhub_dead_letters", "Messages sent to the dead-letter queue.", ["provider", "reason"]
)
SKIPPED = Counter(
    "genhub_worker_skipped_messages", "Messages settled without a run.", ["provider", "reason"]
)
IN_FLIGHT = Gauge("genhub_worker_in_flight", "Deliveries being handled.", ["provider"])
CONCURRENCY = Gauge("genhub_worker_concurrency_limit", "Deliveries handled at once.", ["provider"])


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
