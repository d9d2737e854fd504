"""Per-provider rate and concurrency limits as a worker hook, over the limiter every replica
shares (``genhub.common.provider_limits``, Redis).

A message waits for its provider's slot *before* it is claimed: ``before_claim`` asks the
limiter, and a refusal returns its ``retry_after``, so the worker parks the message in a delay
queue (``Action.DEFER``). The task stays queued and no attempt is spent, however long it waits.

A slot's holder is the task id, so the slot belongs to the task, not to a delivery:

- taken in ``before_claim`` for a run message; a poll message of a long-running job acquires
  again, which renews the slot the job has held since it was submitted and is not counted
  against the rate again (the limiter's rule for long jobs);
- a duplicate delivery of a running task, or the next run after a crash, acquires the slot the
  task already holds instead of a second one;
- renewed every third of its lease while a provider call runs, so a call may outlast the lease;
- released when the run ends (``on_complete``, ``on_retry``, ``on_fail``, ``on_reroute``,
  ``on_abandon``) or when a claim finds nothing to run (deleted, finished, cancelled,
  re-routed). Not on a ``leased`` or ``run ended`` skip: the slot may be another live run's of
  the same task, which releases it itself;
- a worker that dies keeps its slots until their lease lapses (``slot_lease_seconds``), unless
  the task's next run takes them over first.

Redis down: the limiter fails open (allowed, ``genhub_rate_limit_fail_open_total{limiter=
"provider"}`` counted, a warning logged at most every 30 s); releases that fail are left to the
lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Multiset

from prometheus_client import Counter

from genhub.common.provider_limits import ProviderLimiter
from genhub.common.task_queue import Delivery
from genhub.dispatcher.hooks import Run, WorkerHook
from genhub.providers.sdk import ProviderError
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)

WAITS = Counter(
    "genhub_provider_limit_waits",
    "Messages parked in a delay queue because the provider's limit was reached.",
    ["provider", "reason"],
)
# Skips after which the task holds no run: its slot (taken for this delivery) goes back.
_FREEING_SKIPS = frozenset({"deleted", "finished", "cancelled", "exhausted", "rerouted"})


class ProviderLimitHook(WorkerHook):
    """Holds ``provider``'s slot for each task from before its claim to the end of its run.

    Args:
        limiter: The shared limiter, configured with this provider's limits.
        provider: The provider this worker serves.
        renew_every: Seconds between lease renewals of the slots whose calls are running.
    """

    def __init__(self, limiter: ProviderLimiter, provider: str, *, renew_every: float) -> None:
        self._limiter = limiter
        self._provider = provider
        self._renew_every = renew_every
        self._calling: Multiset[str] = Multiset()
        self._renewer: asyncio.Task[None] | None = None

    @property
    def limited(self) -> bool:
        """Whether any limit applies (otherwise the hook costs nothing)."""
        limits = self._limiter.limits(self._provider)
        return limits.requests_per_minute > 0 or limits.max_concurrent_jobs > 0

    async def before_claim(self, delivery: Delivery) -> float | None:
        """Take (or renew) the task's slot; a refusal is the delay to wait, unclaimed."""
        if not self.limited:
            return None
        decision = await self._limiter.acquire(self._provider, delivery.message.task_id)
        if decision:
            return None
        WAITS.labels(self._provider, decision.reason).inc()
        return max(decision.retry_after, 0.05)

    async def before_call(self, run: Run, operation: str) -> None:
        """Keep the slot's lease alive while the call runs."""
        if self.limited and operation != "cancel":
            self._calling[run.task.task_id] += 1
            if self._renewer is None or self._renewer.done():
                self._renewer = asyncio.create_task(self._renew_forever())

    async def after_call(
        self, run: Run, operation: str, seconds: float, error: ProviderError | None
    ) -> None:
        """The call is over: stop renewing for it."""
        if self.limited and operation != "cancel":
            self._calling[run.task.task_id] -= 1
            if self._calling[run.task.task_id] <= 0:
                del self._calling[run.task.task_id]

    async def _renew_forever(self) -> None:
        while self._calling:
            await asyncio.sleep(self._renew_every)
            for holder in list(self._calling):
                # Held already, so this renews the lease and counts nothing against the rate.
                await self._limiter.acquire(self._provider, holder)

    async def _release(self, task_id: str) -> None:
        if self.limited:
            await self._limiter.release(self._provider, task_id)

    async def on_complete(self, run: Run, task: task_pb2.Task) -> None:
        """The run succeeded: free the slot."""
        await self._release(run.task.task_id)

    async def on_retry(self, run: Run, error: ProviderError, delay: float) -> None:
        """The run failed and waits for a retry: free the slot (the retry takes one again)."""
        await self._release(run.task.task_id)

    async def on_fail(self, run: Run, error: ProviderError) -> None:
        """The task failed: free the slot."""
        await self._release(run.task.task_id)

    async def on_reroute(self, run: Run, target: task_pb2.ModelRef) -> None:
        """The task left for another provider: free this provider's slot."""
        await self._release(run.task.task_id)

    async def on_abandon(self, run: Run, reason: str) -> None:
        """The run was lost (cancelled, taken over, handed back): free the slot."""
        await self._release(run.task.task_id)

    async def on_skip(self, delivery: Delivery, reason: str) -> None:
        """Nothing to run: free the slot taken for this delivery, unless another live run of
        the task may hold it."""
        if reason in _FREEING_SKIPS:
            await self._release(delivery.message.task_id)

    async def close(self) -> None:
        """Stop renewing (slots still held lapse with their lease or are released by runs)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
