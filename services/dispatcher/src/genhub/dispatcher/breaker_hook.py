"""Circuit breakers and failover as a worker hook (``genhub.common.breaker``, state in Redis).

Before a run starts new provider work (``generate``, or ``submit`` of a long-running job), the
breaker of the provider and model serving the task is asked. Open (or half-open with its single
probe taken by another call), the task does not wait in the queue for the provider to recover:

- a task whose request names fallbacks (``fallbacks: [{provider, model}]``) is re-routed to the
  next fallback after the one serving it whose own breaker is not open (task-store's
  RerouteTask: the task is queued on that provider's queue, with a fresh attempt budget, and
  ``served_by`` records where it runs);
- any other task fails at once with ``PROVIDER_CIRCUIT_OPEN`` (retryable, class
  ``provider_unavailable``, the seconds until the next probe in the message), and its message goes
  to the dead-letter queue, from which ``genhubctl dlq requeue`` runs it again (RetryTask).

Every call the breaker allowed is reported (``after_call``: None on success, else the error
class; polls too, since a job's provider is just as healthy or not): N consecutive
provider-side failures open it, quota exhaustion at once. Calls made with a request's own
credentials neither ask nor feed the breaker: one tenant's bad or exhausted key must not open
the provider for everyone, and the platform's state must not refuse a tenant who brings a key.

Redis down: breakers fail safe to closed (every call allowed; counted and logged by the
library), so the core path keeps working.
"""

from __future__ import annotations

import logging
import math

from prometheus_client import Counter

from genhub.common.breaker import BreakerState, CircuitBreaker
from genhub.dispatcher.hooks import FailFast, Reroute, Run, WorkerHook
from genhub.providers.sdk import ErrorClass, ProviderError
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)

REROUTES = Counter(
    "genhub_task_reroutes",
    "Tasks re-routed to a fallback because their provider's circuit breaker was open.",
    ["provider", "model", "to_provider", "to_model"],
)
FAST_FAILS = Counter(
    "genhub_breaker_fast_failures",
    "Tasks failed at once because their provider's circuit breaker was open.",
    ["provider", "model"],
)
CIRCUIT_OPEN = "PROVIDER_CIRCUIT_OPEN"
_RECORDED = frozenset({"generate", "submit", "poll"})


def _own_credentials(run: Run) -> bool:
    return run.call.config.source == "request" or run.task.request_credentials


class BreakerHook(WorkerHook):
    """Gates new provider work on ``provider``'s breakers and reports every allowed call."""

    def __init__(self, breaker: CircuitBreaker, provider: str) -> None:
        self._breaker = breaker
        self._provider = provider

    async def before_run(self, run: Run) -> None:
        """Go ahead while the breaker allows; else re-route or fail fast."""
        if _own_credentials(run):
            return
        model = run.task.model
        permit = await self._breaker.allow(self._provider, model)
        if permit:
            return
        wait = math.ceil(permit.retry_after)
        target = await self._next_fallback(run.task)
        error = task_pb2.TaskError(
            code=CIRCUIT_OPEN,
            message=(
                f"{self._provider}/{model} is unavailable: its circuit breaker is "
                f"{permit.state.value} after repeated provider errors; next probe in {wait}s"
                + (f"; re-routed to {target.provider}/{target.model}" if target else "")
            ),
            retryable=True,
            error_class=ErrorClass.PROVIDER_UNAVAILABLE.value,
        )
        if target is not None:
            REROUTES.labels(self._provider, model, target.provider, target.model).inc()
            log.warning(
                "circuit open, task re-routed",
                extra={"model": model, "to": f"{target.provider}/{target.model}"},
            )
            raise Reroute(target, error)
        FAST_FAILS.labels(self._provider, model).inc()
        raise FailFast(error)

    async def _next_fallback(self, task: task_pb2.Task) -> task_pb2.ModelRef | None:
        """The first fallback after the one serving ``task`` (the requested model is before
        them all) whose breaker is not open; None when there is none."""
        chain = list(task.fallbacks)
        start = 0
        for index, fallback in enumerate(chain):
            if (fallback.provider, fallback.model) == (task.provider, task.model):
                start = index + 1
        for fallback in chain[start:]:
            snapshot = await self._breaker.state(fallback.provider, fallback.model)
            if snapshot.state is BreakerState.OPEN and snapshot.retry_after > 0:
                continue
            return fallback
        return None

    async def after_call(
        self, run: Run, operation: str, seconds: float, error: ProviderError | None
    ) -> None:
        """Report the call's outcome to the breaker (closing it after a successful probe)."""
        if operation not in _RECORDED or _own_credentials(run):
            return
        await self._breaker.record(
            self._provider,
            run.task.model,
            error.error_class.value if error is not None else None,
            error.retry_after if error is not None else None,
        )
