"""Task metrics, counted in one place: task-store's transition hook (every status change of
every task passes through ``Lifecycle``, whichever service asked for it)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from genhub.common.metrics import TASK_END_TO_END_SECONDS as END_TO_END
from genhub.common.metrics import TASK_QUEUE_WAIT_SECONDS as QUEUE_WAIT
from genhub.common.metrics import TASK_RUN_SECONDS as RUN_TIME
from genhub.common.metrics import TASKS_CREATED as CREATED
from genhub.common.metrics import TASKS_FINISHED as FINISHED
from genhub.common.task_states import TERMINAL
from genhub.taskstore.operations import Transition
from genhub.v1 import task_pb2

# The series themselves are defined once, in genhub.common.metrics.
__all__ = ["CREATED", "END_TO_END", "FINISHED", "QUEUE_WAIT", "RUN_TIME", "observe"]


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
