"""Task metrics, counted in one place: task-store's transition hook (every status change of
every task passes through ``Lifecycle``, whichever service asked for it)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Histogram

from genhub.common.task_states import TERMINAL
from genhub.taskstore.operations import Transition
from genhub.v1 import task_pb2

# Seconds, from sub-second image calls to hour-long video backlogs.
_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

CREATED = Counter(
    "genhub_tasks_created",
    "Tasks created.",
    ["provider", "model", "type", "priority"],
)
FINISHED = Counter(
    "genhub_tasks_finished",
    "Tasks that reached a final status.",
    ["provider", "model", "type", "status"],
)
QUEUE_WAIT = Histogram(
    "genhub_task_queue_wait_seconds",
    "From creation to the start of the first run.",
    ["provider", "priority"],
    buckets=_BUCKETS,
)
RUN_TIME = Histogram(
    "genhub_task_run_seconds",
    "From the start of the last run to the final status.",
    ["provider", "model", "status"],
    buckets=_BUCKETS,
)
END_TO_END = Histogram(
    "genhub_task_end_to_end_seconds",
    "From creation to the final status.",
    ["provider", "model", "status"],
    buckets=_BUCKETS,
)


def _seconds(later: Timestamp, earlier: Timestamp) -> float:
    return max(0.0, (later.ToNanoseconds() - earlier.ToNanoseconds()) / 1e9)


async def observe(transition: Transition) -> None:
    """Count a transition (the hook ``Lifecycle`` calls)."""
    task = transition.task
    kind = task_pb2.TaskType.Name(task.type).removeprefix("TASK_TYPE_").lower()
    if transition.operation == "create":
        priority = task_pb2.Priority.Name(task.priority).removeprefix("PRIORITY_").lower()
        CREATED.labels(task.provider, task.model, kind, priority).inc()
    elif transition.operation == "claim" and task.attempts == 1:
        priority = task_pb2.Priority.Name(task.priority).removeprefix("PRIORITY_").lower()
        QUEUE_WAIT.labels(task.provider, priority).observe(
            _seconds(task.start_time, task.create_time)
        )
    elif transition.operation not in ("delete", "expire") and task.status in TERMINAL:
        # An expired task finished (succeeded) earlier and was counted then.
        status = task_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_").lower()
        FINISHED.labels(task.provider, task.model, kind, status).inc()
        END_TO_END.labels(task.provider, task.model, status).observe(
            _seconds(task.finish_time, task.create_time)
        )
        if task.HasField("start_time"):
            RUN_TIME.labels(task.provider, task.model, status).observe(
                _seconds(task.finish_time, task.start_time)
            )
