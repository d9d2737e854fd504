"""The task state machine: the one table of legal status changes.

    pending -> queued -> running -> succeeded | failed | cancelled
    succeeded -> expired;  failed -> queued (an operator's retry)

Tasks are created ``queued`` (task-store records the intent to publish in the same write, see
``lifecycle.py``); ``pending`` remains for documents written before that, which the reaper
publishes and moves on. ``queued -> queued`` records a republish of a task whose message may be
lost. ``running -> running`` renews a run (heartbeat, provider job recorded, a poll) or starts a
new run in place of one whose lease lapsed. ``running -> queued`` hands a task back for a retry.
``lifecycle.py`` says which operation takes which edge; this table is what every operation is
checked against.
"""

from __future__ import annotations

from typing import TypeAlias

from genhub.common.task_states import TERMINAL
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
TERMINAL_NAMES = frozenset(NAMES[s] for s in TERMINAL)

ALLOWED: dict[Status, frozenset[Status]] = {
    S.TASK_STATUS_PENDING: frozenset(
        {S.TASK_STATUS_QUEUED, S.TASK_STATUS_RUNNING, S.TASK_STATUS_CANCELLED}
    ),
    S.TASK_STATUS_QUEUED: frozenset(
        {S.TASK_STATUS_QUEUED, S.TASK_STATUS_RUNNING, S.TASK_STATUS_CANCELLED}
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
    S.TASK_STATUS_FAILED: frozenset({S.TASK_STATUS_QUEUED}),
    S.TASK_STATUS_CANCELLED: frozenset(),
    S.TASK_STATUS_EXPIRED: frozenset(),
}


def is_legal(from_status: Status, to_status: Status) -> bool:
    """Whether the state machine allows ``from_status -> to_status``."""
    return to_status in ALLOWED.get(from_status, frozenset())


def name(status: Status) -> str:
    """The stored (lowercase) name of a status."""
    return NAMES[status]
