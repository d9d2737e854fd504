"""The worker runtime's metrics: the shared series of genhub.common.metrics under the names the
worker records them by, and the sweeper's own series."""

from __future__ import annotations

from prometheus_client import Counter

from genhub.common.metrics import DEAD_LETTERS as DEAD_LETTERS
from genhub.common.metrics import PROVIDER_CALL_SECONDS as RUN_SECONDS
from genhub.common.metrics import TASK_END_TO_END_SECONDS as END_TO_END
from genhub.common.metrics import TASK_QUEUE_WAIT_SECONDS as QUEUE_WAIT
from genhub.common.metrics import TASK_RETRIES as RETRIES
from genhub.common.metrics import TASKS_FINISHED as TASKS
from genhub.common.metrics import WORKER_IN_FLIGHT as IN_FLIGHT

__all__ = [
    "DEAD_LETTERS",
    "END_TO_END",
    "IN_FLIGHT",
    "QUEUE_WAIT",
    "RETRIES",
    "RUN_SECONDS",
    "SWEPT",
    "TASKS",
]

SWEPT = Counter(
    "genhub_sweeper_actions_total", "Tasks the sweeper acted on", ["provider", "action"]
)
