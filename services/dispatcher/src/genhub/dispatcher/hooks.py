"""Worker hooks: how metrics, logs, rate limits, circuit breakers and the media store plug into
the worker without being written into its control flow (dramatiq's middleware shape).

A hook subclasses :class:`WorkerHook` and overrides what it needs; :class:`Hooks` calls every
hook in order. Observers (``after_call``, ``on_*``) cannot break a task: an exception there is
logged and the next hook runs. Three points may change the course of a task:
``before_claim`` (return a delay to put the message back unclaimed: no attempt is spent, e.g. a
provider rate limit), ``before_run`` (raise :class:`Reroute` or :class:`FailFast` instead of
calling the provider, e.g. an open circuit breaker) and ``on_output`` (return a replacement
output, e.g. with media moved into the object store; raise a ProviderError to fail the attempt).

Every claimed run ends in exactly one of ``on_complete``, ``on_retry``, ``on_fail``,
``on_reroute`` or ``on_abandon``, except a long-running job's run, which spans several
deliveries (submit, then polls) and ends in one of them once, and a run whose worker died or
lost task-store, which ends when its lease lapses (the task's next run takes over). A hook
holding a resource for a run (a provider's concurrency slot) releases it there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from genhub.common.task_queue import Delivery
from genhub.providers.sdk import Call, Finished, ProviderError
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One claimed run, as hooks see it."""

    provider: str
    task: task_pb2.Task
    run_id: str
    call: Call


class Reroute(Exception):
    """Raised by ``before_run``: do not call this provider; hand the task to ``target`` (one of
    its fallbacks) through task-store's RerouteTask. ``error`` says why (kept as the task's last
    error)."""

    def __init__(self, target: task_pb2.ModelRef, error: task_pb2.TaskError) -> None:
        super().__init__(f"re-routed to {target.provider}/{target.model}: {error.message}")
        self.target = target
        self.error = error


class FailFast(Exception):
    """Raised by ``before_run``: do not call the provider; fail the task now with ``error`` and
    put its message in the dead-letter queue, where an operator can requeue it (RetryTask) once
    the provider is back."""

    def __init__(self, error: task_pb2.TaskError) -> None:
        super().__init__(error.message)
        self.error = error


class WorkerHook:
    """Base class: every method is a no-op."""

    async def before_claim(self, delivery: Delivery) -> float | None:
        """Seconds to wait before this message may be claimed, or None to go ahead."""
        return None

    async def before_run(self, run: Run) -> None:
        """A claimed run is about to start new provider work (``generate``, or ``submit`` of a
        long-running job; never a poll of a job already submitted). Raise :class:`Reroute` or
        :class:`FailFast` to stop it."""

    async def before_call(self, run: Run, operation: str) -> None:
        """A provider call (``generate``, ``submit``, ``poll``, ``cancel``) is about to start."""

    async def after_call(
        self, run: Run, operation: str, seconds: float, error: ProviderError | None
    ) -> None:
        """A provider call ended after ``seconds``, with ``error`` if it failed."""

    async def on_output(self, run: Run, finished: Finished) -> Finished:
        """The provider's output, checked; return it (or a replacement) to be stored."""
        return finished

    async def on_complete(self, run: Run, task: task_pb2.Task) -> None:
        """The run succeeded and its result is stored."""

    async def on_retry(self, run: Run, error: ProviderError, delay: float) -> None:
        """The attempt failed and a retry is scheduled after ``delay`` seconds."""

    async def on_fail(self, run: Run, error: ProviderError) -> None:
        """The task failed for good."""

    async def on_dead_letter(self, delivery: Delivery, reason: str) -> None:
        """The message goes to the dead-letter queue."""

    async def on_skip(self, delivery: Delivery, reason: str) -> None:
        """The message was settled without a run (deleted, finished, leased, ...)."""

    async def on_reroute(self, run: Run, target: task_pb2.ModelRef) -> None:
        """The run ended by re-routing the task to ``target``."""

    async def on_abandon(self, run: Run, reason: str) -> None:
        """The run ended without an outcome of its own: cancelled, deleted or taken over while it
        ran, its result refused by task-store, or handed back by a stopping worker."""


class Hooks(WorkerHook):
    """Every hook, called in order."""

    def __init__(self, hooks: Sequence[WorkerHook] = ()) -> None:
        self._hooks = list(hooks)

    def add(self, hook: WorkerHook) -> None:
        """Append a hook."""
        self._hooks.append(hook)

    async def before_claim(self, delivery: Delivery) -> float | None:
        """The longest delay any hook asks for."""
        delays = [d for h in self._hooks if (d := await h.before_claim(delivery)) is not None]
        return max(delays) if delays else None

    async def before_run(self, run: Run) -> None:
        """Each hook in order; the first Reroute or FailFast raised stops the run."""
        for hook in self._hooks:
            await hook.before_run(run)

    async def on_output(self, run: Run, finished: Finished) -> Finished:
        """Each hook's output feeds the next."""
        for hook in self._hooks:
            finished = await hook.on_output(run, finished)
        return finished

    async def before_call(self, run: Run, operation: str) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.before_call(run, operation))

    async def after_call(
        self, run: Run, operation: str, seconds: float, error: ProviderError | None
    ) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.after_call(run, operation, seconds, error))

    async def on_complete(self, run: Run, task: task_pb2.Task) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.on_complete(run, task))

    async def on_retry(self, run: Run, error: ProviderError, delay: float) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.on_retry(run, error, delay))

    async def on_fail(self, run: Run, error: ProviderError) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.on_fail(run, error))

    async def on_dead_letter(self, delivery: Delivery, reason: str) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.on_dead_letter(delivery, reason))

    async def on_skip(self, delivery: Delivery, reason: str) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.on_skip(delivery, reason))

    async def on_reroute(self, run: Run, target: task_pb2.ModelRef) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.on_reroute(run, target))

    async def on_abandon(self, run: Run, reason: str) -> None:
        """See WorkerHook."""
        for hook in self._hooks:
            await _observe(hook.on_abandon(run, reason))


async def _observe(pending: Awaitable[None]) -> None:
    try:
        await pending
    except Exception:
        log.exception("worker hook failed")
