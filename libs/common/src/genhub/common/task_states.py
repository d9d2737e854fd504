"""Task statuses every service shares. The transition rules live in task-store (``states.py``
and ``lifecycle.py``); this module only says which statuses are final."""

from __future__ import annotations

from genhub.v1 import task_pb2

# A task in one of these statuses never changes again (but for succeeded -> expired).
TERMINAL = frozenset(
    {
        task_pb2.TASK_STATUS_SUCCEEDED,
        task_pb2.TASK_STATUS_FAILED,
        task_pb2.TASK_STATUS_CANCELLED,
        task_pb2.TASK_STATUS_EXPIRED,
    }
)


def is_terminal(status: task_pb2.TaskStatus.ValueType) -> bool:
    """Whether ``status`` is final."""
    return status in TERMINAL
