"""Every Prometheus series GenHub exports, in one place, and the /metrics listener.

Names follow Prometheus conventions (base units, ``_seconds``, ``_total`` for counters); the
gRPC series use go-grpc-prometheus's names and labels so stock dashboards and alerts apply.
Dashboards and alerts (deploy/helm/genhub) refer to these names; tests check both agree.

Who records what:

- ``grpc_server_*``: the server interceptor (genhub.common.interceptor), every gRPC server.
- ``http_server_*``: the gateway's REST layer (genhub.gateway.rest.exchange).
- ``genhub_tasks_*``, ``genhub_task_queue_wait/run/end_to_end_seconds``: task-store's
  transition hook (genhub.taskstore.task_metrics), the one place every status change passes.
- provider calls, retries, dead letters, in-flight and concurrency: the worker's metrics hook
  (genhub.dispatcher.metrics).
- ``genhub_queue_depth`` / ``genhub_queue_consumers``: task-store, which reads every known
  provider's queues from the broker (genhub.taskstore.queue_metrics).

Label values are small, closed sets (providers, models, enum names, status codes), never ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server

from genhub.common.settings import ALL_INTERFACES, split_address
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)

# Latency buckets, seconds. RPCs and HTTP requests: 1 ms .. 60 s (long polls and streams end
# in the last bucket). Task phases: 10 ms .. 1 h (video jobs take minutes).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# ------------------------------------------------------------------ gRPC servers ----

_GRPC_LABELS = ["grpc_type", "grpc_service", "grpc_method"]
GRPC_SERVER_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server.", _GRPC_LABELS
)
GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, regardless of success or failure.",
    [*_GRPC_LABELS, "grpc_code"],
)
GRPC_SERVER_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Response latency of RPCs handled by the server, until the last message and status.",
    _GRPC_LABELS,
    buckets=REQUEST_BUCKETS,
)

# ------------------------------------------------------------------- HTTP (REST) ----

HTTP_SERVER_REQUESTS = Counter(
    "http_server_requests_total",
    "HTTP requests answered, by method, route (the RPC or page served) and status code.",
    ["method", "route", "code"],
)
HTTP_SERVER_REQUEST_SECONDS = Histogram(
    "http_server_request_duration_seconds",
    "HTTP request latency, until the response (streams: until the stream ends).",
    ["method", "route"],
    buckets=REQUEST_BUCKETS,
)

# ------------------------------------------------------------------------- tasks ----

TASKS_CREATED = Counter(
    "genhub_tasks_created_total",
    "Tasks created (idempotent repeats not counted).",
    ["provider", "model", "type", "priority"],
)
TASKS_FINISHED = Counter(
    "genhub_tasks_finished_total",
    "Tasks that reached a final status (succeeded, failed, cancelled, expired).",
    ["provider", "model", "type", "status"],
)
TASK_QUEUE_WAIT_SECONDS = Histogram(
    "genhub_task_queue_wait_seconds",
    "From created to the start of its first run: how long a task waited for a worker.",
    ["provider", "priority"],
    buckets=TASK_BUCKETS,
)
TASK_RUN_SECONDS = Histogram(
    "genhub_task_run_seconds",
    "From the start of a task's last run to its final status.",
    ["provider", "model", "status"],
    buckets=TASK_BUCKETS,
)
TASK_END_TO_END_SECONDS = Histogram(
    "genhub_task_end_to_end_seconds",
    "From created to a final status.",
    ["provider", "model", "status"],
    buckets=TASK_BUCKETS,
)
TASK_RETRIES = Counter(
    "genhub_task_retries_total",
    "Retries scheduled after a retryable failure.",
    ["provider", "model", "error_class"],
)
DEAD_LETTERS = Counter(
    "genhub_dead_letters_total",
    "Messages sent to a provider's dead-letter queue, by reason (attempts exhausted, ...).",
    ["provider", "reason"],
)

# --------------------------------------------------------------------- providers ----

PROVIDER_CALL_SECONDS = Histogram(
    "genhub_provider_call_seconds",
    "Latency of one call to a provider's API (generate, submit, poll, cancel).",
    ["provider", "model", "call"],
    buckets=TASK_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "genhub_provider_errors_total",
    "Failed provider calls, by error class (rate_limited, unavailable, timeout, invalid, ...).",
    ["provider", "model", "error_class"],
)

# ------------------------------------------------------------ workers and queues ----

WORKER_SKIPPED = Counter(
    "genhub_worker_skipped_messages_total",
    "Messages a worker settled without a run (task finished, cancelled or gone), by reason.",
    ["provider", "reason"],
)
WORKER_IN_FLIGHT = Gauge(
    "genhub_worker_in_flight", "Tasks a worker process is handling now.", ["provider"]
)
WORKER_CONCURRENCY_LIMIT = Gauge(
    "genhub_worker_concurrency_limit",
    "The most tasks a worker process handles at once (its prefetch).",
    ["provider"],
)
QUEUE_DEPTH = Gauge(
    "genhub_queue_depth",
    "Messages ready in a provider's queue (work, dead-letter), as the broker reports them.",
    ["provider", "queue"],
)
QUEUE_CONSUMERS = Gauge(
    "genhub_queue_consumers",
    "Consumers attached to a provider's queue, as the broker reports them.",
    ["provider", "queue"],
)

# -------------------------------------------------------------------- task-store ----

STORE_WRITES = Counter(
    "genhub_store_writes_total",
    "Database writes made by task-store, by collection.",
    ["collection"],
)

# ---------------------------------------------------------------- label values ----
# Enum labels are the proto enum value names without their prefix, lower-case: type="image",
# status="succeeded", priority="critical" (UNSPECIFIED priority counts as "default").


def type_label(value: task_pb2.TaskType.ValueType) -> str:
    """``TASK_TYPE_IMAGE`` -> ``image``."""
    return task_pb2.TaskType.Name(value).removeprefix("TASK_TYPE_").lower()


def status_label(value: task_pb2.TaskStatus.ValueType) -> str:
    """``TASK_STATUS_SUCCEEDED`` -> ``succeeded``."""
    return task_pb2.TaskStatus.Name(value).removeprefix("TASK_STATUS_").lower()


def priority_label(value: task_pb2.Priority.ValueType) -> str:
    """``PRIORITY_CRITICAL`` -> ``critical``; unspecified is ``default``, as it is queued."""
    if value == task_pb2.PRIORITY_UNSPECIFIED:
        value = task_pb2.PRIORITY_DEFAULT
    return task_pb2.Priority.Name(value).removeprefix("PRIORITY_").lower()


# ------------------------------------------------------------------------ server ----


@dataclass
class MetricsServer:
    """A running /metrics listener (a daemon thread); ``close`` stops it."""

    host: str
    port: int
    _httpd: WSGIServer
    _thread: Thread

    def close(self) -> None:
        """Stop listening (idempotent)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    listen: str, registry: CollectorRegistry = REGISTRY
) -> MetricsServer | None:
    """Serve ``registry`` in the Prometheus text format on ``listen`` (``host:port``; port 0
    picks one; ``[::]`` for IPv6); None, and nothing served, when ``listen`` is empty.

    Raises ``OSError`` naming the address when it cannot listen.
    """
    if not listen:
        return None
    host, port = split_address(listen)
    try:
        httpd, thread = start_http_server(port, addr=host or ALL_INTERFACES, registry=registry)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {listen}: {exc}") from exc
    bound = int(httpd.server_address[1])
    log.info("metrics serving", extra={"address": listen, "port": bound})
    return MetricsServer(host=host, port=bound, _httpd=httpd, _thread=thread)
