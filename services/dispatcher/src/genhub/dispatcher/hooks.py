"""Worker hooks: how metrics, logs, rate limits, circuit breakers and the media store plug into
the worker without being written into its control flow (dramatiq's middleware shape).

A hook subclasses :class:`WorkerHook` and overrides what it needs; :class:`Hooks` calls every
hook in order. Observers (``after_call``, ``on_*``) cannot break a task: an exception there is
logged and the next hook runs. Two points may change the course of a task:
``before_claim`` (return a delay to put the message back unclaimed: no attempt is spent) and
``on_output`` (return a replacement output, e.g. with media moved into the object store; raise a
ProviderError to fail the attempt).
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


class WorkerHook:
    """Base class: every method is a no-op."""

    async def before_claim(self, delivery: Delivery) -> float | None:
        """Seconds to wait before this message may be claimed, or None to go ahead."""
        return None

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


async def _observe(pending: Awaitable[None]) -> None:
    try:
        await pending
    except Exception:
        log.exception("worker hook failed")
