"""Prometheus metrics of the worker runtime."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASKS = Counter(
    "genhub_tasks_finished_total", "Tasks finished by a worker", ["provider", "model", "outcome"]
)
RETRIES = Counter("genhub_task_retries_total", "Retries scheduled", ["provider", "model", "code"])
DEAD_LETTERS = Counter("genhub_task_dead_letters_total", "Messages dead-lettered", ["provider"])
QUEUE_WAIT = Histogram(
    "genhub_task_queue_wait_seconds",
    "From create to first start",
    ["provider", "priority"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
RUN_SECONDS = Histogram(
    "genhub_provider_call_seconds", "Provider call latency", ["provider", "model", "call"]
)
END_TO_END = Histogram(
    "genhub_task_end_to_end_seconds",
    "From create to succeeded",
    ["provider", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
IN_FLIGHT = Gauge("genhub_worker_in_flight", "Messages being processed", ["provider"])
SWEPT = Counter(
    "genhub_sweeper_actions_total", "Tasks the sweeper acted on", ["provider", "action"]
)
