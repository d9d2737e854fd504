"""The task state machine: the one table of legal transitions.

    pending -> queued -> running -> succeeded | failed | cancelled
    succeeded -> expired

``pending -> running`` happens when a worker takes the message before the gateway has recorded
``queued`` (it publishes first, so a crash can never leave a queued task without a message).
``queued -> queued`` records that the sweeper re-published a task whose message may be lost.
``running -> queued`` hands a task back for a retry or a sweep; ``running -> running`` restarts
a run whose worker died (the new run gets a new run id, so the dead run's result is refused).
"""

from __future__ import annotations

from typing import TypeAlias

from genhub.v1 import task_pb2

S = task_pb2
Status: TypeAlias = task_pb2.TaskStatus.ValueType

NAMES: dict[Status, str] = {
    S.TASK_STATUS_PENDING: "pending",
    S.TASK_STATUS_QUEUED: "queued",
    S.TASK_STATUS_RUNNING: "running",
    S.TASK_STATUS_SUCCEEDED: "succeeded",
    S.TASK_STATUS_FAILED: "failed",
    S.TASK_STATUS_CANCELLED: "cancelled",
    S.TASK_STATUS_EXPIRED: "expired",
}
BY_NAME: dict[str, Status] = {name: value for value, name in NAMES.items()}

TERMINAL = frozenset(
    {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELLED, S.TASK_STATUS_EXPIRED}
)

ALLOWED: dict[Status, frozenset[Status]] = {
    S.TASK_STATUS_PENDING: frozenset(
        {S.TASK_STATUS_QUEUED, S.TASK_STATUS_RUNNING, S.TASK_STATUS_CANCELLED, S.TASK_STATUS_FAILED}
    ),
    S.TASK_STATUS_QUEUED: frozenset(
        {
            S.TASK_STATUS_QUEUED,
            S.TASK_STATUS_RUNNING,
            S.TASK_STATUS_CANCELLED,
            S.TASK_STATUS_FAILED,
        }
    ),
    S.TASK_STATUS_RUNNING: frozenset(
        {
            S.TASK_STATUS_RUNNING,
            S.TASK_STATUS_QUEUED,
            S.TASK_STATUS_SUCCEEDED,
            S.TASK_STATUS_FAILED,
            S.TASK_STATUS_CANCELLED,
        }
    ),
    S.TASK_STATUS_SUCCEEDED: frozenset({S.TASK_STATUS_EXPIRED}),
    S.TASK_STATUS_FAILED: frozenset(),
    S.TASK_STATUS_CANCELLED: frozenset(),
    S.TASK_STATUS_EXPIRED: frozenset(),
}


def is_legal(from_status: Status, to_status: Status) -> bool:
    """Whether the state machine allows ``from_status -> to_status``."""
    return to_status in ALLOWED.get(from_status, frozenset())


def name(status: Status) -> str:
    """The stored (lowercase) name of a status."""
    return NAMES[status]
