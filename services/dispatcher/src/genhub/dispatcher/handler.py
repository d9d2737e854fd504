"""The worker's policy: one delivery in, one verdict out, over three seams — the task lifecycle
(task-store), the provider adapter and the hooks. It holds no queue or database code, so its
retry, dead-letter, lease and job rules are tested against the in-memory twins in milliseconds.

For a run message: claim (which reads the task, counts an attempt and leases the run), call the
adapter, check the output, complete; or, for a long-running model, submit and record the job
(task-store schedules the polls). For a poll message: continue the named run, poll the job, and
complete or heartbeat (which schedules the next poll). Failures become a scheduled retry, or a
failure (dead-lettered when retries ran out). Every store call is one named operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from genhub.common import logging as glog
from genhub.common import topology
from genhub.common.errors import (
    FailedPrecondition,
    GenHubError,
    Internal,
    NotFound,
    Unavailable,
)
from genhub.common.store_client import Claim, TaskLifecycle
from genhub.common.task_queue import ACK, DEAD_LETTER, REQUEUE, Action, Delivery, Verdict
from genhub.common.topology import MessageKind
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.credentials import ConfigWatcher
from genhub.dispatcher.hooks import FailFast, Hooks, Reroute, Run
from genhub.dispatcher.outcome import check_output
from genhub.providers.sdk import (
    Call,
    ErrorClass,
    Finished,
    Pending,
    PermanentError,
    Provider,
    ProviderError,
    ProviderTimeout,
)
from genhub.store.v1 import task_store_pb2 as pb
from genhub.v1 import provider_pb2, task_pb2

log = logging.getLogger(__name__)
T = TypeVar("T")
# Pause before handing a message back when task-store or the broker is down, so an outage is
# not a hot loop of redeliveries.
INFRA_BACKOFF_SECONDS = 1.0
# A task-store that fails internally (a bug) fails the same way next time: hand the message back
# a few times (a deploy may fix it), then dead-letter it instead of looping.
INTERNAL_HANDBACK_BUDGET = 5
_SKIPS = {
    pb.SKIP_REASON_NOT_FOUND: "deleted",
    pb.SKIP_REASON_FINISHED: "finished",
    pb.SKIP_REASON_CANCELLED: "cancelled",
    pb.SKIP_REASON_LEASED: "leased",
    pb.SKIP_REASON_RUN_ENDED: "run ended",
    pb.SKIP_REASON_EXHAUSTED: "exhausted",
    pb.SKIP_REASON_REROUTED: "rerouted",
}


class TaskHandler:
    """Turns deliveries of one provider's queue into lifecycle operations and adapter calls."""

    def __init__(
        self,
        settings: DispatcherSettings,
        provider: Provider,
        store: TaskLifecycle,
        config: ConfigWatcher,
        hooks: Hooks | None = None,
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._store = store
        self._config = config
        self.hooks = hooks or Hooks()
        self._declared = {m.model: m for m in provider.catalogue()}

    @property
    def _lease(self) -> float:
        return self._settings.lease_seconds

    async def handle(self, delivery: Delivery) -> Verdict:
        """Handle one delivery; the verdict says how the queue settles it."""
        message = delivery.message
        glog.task_id.set(message.task_id)
        try:
            wait = await self.hooks.before_claim(delivery)
            if wait is not None and wait > 0:
                return Verdict(Action.DEFER, wait)
            claim = await self._store.claim(
                message.task_id,
                run_id=message.run_id if message.kind is MessageKind.POLL else "",
                lease=self._lease,
                max_attempts=self._settings.max_attempts,
                provider=self._provider.name,
            )
            if not claim.claimed:
                return await self._skipped(delivery, claim)
            return await self._run(delivery, claim)
        except Unavailable as exc:
            log.warning("infrastructure unavailable, message handed back: %s", exc)
            await asyncio.sleep(INFRA_BACKOFF_SECONDS)
            return REQUEUE
        except Internal as exc:
            if message.handbacks >= INTERNAL_HANDBACK_BUDGET:
                log.error("task-store keeps failing on this message; dead-lettered: %s", exc)
                await self.hooks.on_dead_letter(delivery, "store internal error")
                return DEAD_LETTER
            log.error("task-store failed internally; message handed back: %s", exc)
            again = topology.TaskMessage(
                message.task_id,
                message.kind,
                message.run_id,
                message.credentials,
                message.handbacks + 1,
            )
            delay = topology.backoff_delay(message.handbacks + 1, base=2.0, cap=60.0)
            return Verdict(Action.DEFER, delay, again)

    async def _skipped(self, delivery: Delivery, claim: Claim) -> Verdict:
        reason = _SKIPS.get(claim.skip, "skipped")
        await self.hooks.on_skip(delivery, reason)
        if claim.skip == pb.SKIP_REASON_LEASED:
            # Another run holds the task (a duplicate message, or our own hand-back after an
            # infrastructure error): look again when its lease would lapse.
            return Verdict(Action.DEFER, min(max(claim.retry_after, 1.0), self._lease))
        if claim.skip == pb.SKIP_REASON_EXHAUSTED:
            await self.hooks.on_dead_letter(delivery, "runs kept dying")
            return DEAD_LETTER
        if claim.skip == pb.SKIP_REASON_CANCELLED and claim.task.provider_job_id:
            await self._cancel_job(claim.task, delivery)
        return ACK

    def _model(self, model_id: str) -> provider_pb2.Model | None:
        # The stored catalogue (with operator overrides) wins over what the adapter declares.
        if self._config.models is not None:
            for model in self._config.models:
                if model.model == model_id:
                    return model
        return self._declared.get(model_id)

    async def _resolve_model(self, model_id: str) -> provider_pb2.Model | None:
        model = self._model(model_id)
        if model is None:
            # An operator may have just added it: re-read the catalogue before giving up.
            await self._config.refresh()
            model = self._model(model_id)
        return model

    async def _cancel_job(self, task: task_pb2.Task, delivery: Delivery) -> None:
        model = self._model(task.model) or provider_pb2.Model(model=task.model)
        call = Call(task=task, model=model, attempt=task.attempts)
        with contextlib.suppress(ProviderError):
            call = self._call(task, model, delivery)
        run = Run(self._provider.name, task, "", call)
        try:
            await self._timed(run, "cancel", self._provider.cancel(call, task.provider_job_id))
        except ProviderError as exc:
            log.warning("provider job not cancelled: %s", exc)

    def _call(self, task: task_pb2.Task, model: provider_pb2.Model, delivery: Delivery) -> Call:
        credentials = delivery.message.credentials
        if task.request_credentials and not credentials:
            raise PermanentError(
                "the credentials given with the create request were lost with its queue message",
                code="CREDENTIALS_UNAVAILABLE",
            )
        config = self._config.resolve(credentials)
        return Call(task=task, model=model, attempt=task.attempts, config=config)

    async def _run(self, delivery: Delivery, claim: Claim) -> Verdict:
        task = _served(claim.task)
        model = await self._resolve_model(task.model)
        fallback = Call(task=task, model=model or provider_pb2.Model(), attempt=task.attempts)
        run = Run(self._provider.name, task, claim.run_id, fallback)
        try:
            if model is None:
                raise PermanentError(
                    f"no {self._provider.name} worker serves model {task.model!r}",
                    code="MODEL_NOT_SERVED",
                )
            run = Run(run.provider, task, claim.run_id, self._call(task, model, delivery))
            if delivery.message.kind is MessageKind.POLL:
                return await self._poll(run, delivery)
            if not (model.long_running and task.provider_job_id):
                await self.hooks.before_run(run)  # new provider work: limits, breakers
            if model.long_running:
                return await self._start_job(run, delivery)
            finished = await self._leased(run, "generate", self._provider.generate(run.call))
            return await self._finish(run, finished)
        except ProviderError as exc:
            return await self._failed(run, delivery, exc)
        except Reroute as detour:
            return await self._reroute(run, detour)
        except FailFast as refusal:
            return await self._fail_fast(run, delivery, refusal.error)
        except RunLost as exc:
            log.info("%s; result abandoned", exc)
            await self.hooks.on_abandon(run, "run lost")
            return ACK
        except asyncio.CancelledError:
            # Draining past the grace period: give the run back now, so the next worker need
            # not wait for its lease to lapse (the unsettled delivery returns to the queue too;
            # whichever copy comes second is skipped).
            await asyncio.shield(self._hand_back(run, delivery))
            raise

    async def _hand_back(self, run: Run, delivery: Delivery) -> None:
        error = task_pb2.TaskError(
            code="WORKER_STOPPED", message="the worker stopped during the run", retryable=True
        )
        try:
            await self._store.schedule_retry(
                run.task.task_id,
                run.run_id,
                error,
                delay=0.0,
                sealed_credentials=delivery.message.credentials,
            )
        except GenHubError as exc:
            log.warning("run not handed back; its lease will lapse: %s", exc)
            return
        await self.hooks.on_abandon(run, "worker stopped")

    async def _start_job(self, run: Run, delivery: Delivery) -> Verdict:
        task = run.task
        if task.provider_job_id:
            # A new run after a crash: the job exists (and is paid for); poll it, never resubmit.
            await self._store_call(
                lambda: self._store.heartbeat(
                    task.task_id,
                    run.run_id,
                    lease=self._lease,
                    poll_after=0.0,
                    sealed_credentials=delivery.message.credentials,
                )
            )
            return ACK
        submitted = await self._leased(run, "submit", self._provider.submit(run.call))
        try:
            # Stored before any waiting, so a crash from here on never submits again.
            await self._store_call(
                lambda: self._store.record_job(
                    task.task_id,
                    run.run_id,
                    submitted.job_id,
                    poll_after=self._poll_delay(submitted.poll_after),
                    lease=self._lease,
                    sealed_credentials=delivery.message.credentials,
                )
            )
        except (FailedPrecondition, NotFound):
            # Cancelled (or taken over) while submitting: do not leave a paid job running.
            try:
                await self._timed(run, "cancel", self._provider.cancel(run.call, submitted.job_id))
            except ProviderError as exc:
                log.warning("provider job not cancelled: %s", exc)
            await self.hooks.on_abandon(run, "run ended while submitting")
        return ACK

    def _poll_delay(self, suggested: float) -> float:
        # Polls come well within the lease, whatever the provider suggests.
        return min(max(suggested, 0.5), self._lease / 3)

    async def _poll(self, run: Run, delivery: Delivery) -> Verdict:
        task = run.task
        outcome = await self._leased(
            run, "poll", self._provider.poll(run.call, task.provider_job_id)
        )
        if isinstance(outcome, Pending):
            try:
                await self._store_call(
                    lambda: self._store.heartbeat(
                        task.task_id,
                        run.run_id,
                        lease=self._lease,
                        poll_after=self._poll_delay(outcome.poll_after),
                        sealed_credentials=delivery.message.credentials,
                    )
                )
            except (FailedPrecondition, NotFound):
                await self.hooks.on_abandon(run, "run ended while polling")
            return ACK
        return await self._finish(run, outcome)

    async def _finish(self, run: Run, finished: Finished) -> Verdict:
        check_output(run.task, finished)
        # Storing the output (the media hook) may take long for a large video: keep the lease.
        finished = await self._keeping_lease(run, self.hooks.on_output(run, finished))
        try:
            task = await self._store_call(
                lambda: self._store.complete(
                    run.task.task_id, run.run_id, finished.result, finished.usage
                )
            )
        except (FailedPrecondition, NotFound) as exc:
            log.info("result discarded: %s", exc.message)
            await self.hooks.on_abandon(run, "result refused")
            return ACK
        await self.hooks.on_complete(run, task)
        return ACK

    async def _failed(self, run: Run, delivery: Delivery, exc: ProviderError) -> Verdict:
        task = run.task
        error = task_pb2.TaskError(
            code=exc.code,
            message=exc.message,
            retryable=exc.retryable,
            error_class=exc.error_class.value,
            provider_request_id=exc.request_id,
        )
        try:
            if exc.retryable and task.attempts < self._settings.max_attempts:
                delay = topology.backoff_delay(
                    task.attempts,
                    base=self._settings.backoff_base_seconds,
                    cap=self._settings.backoff_cap_seconds,
                    retry_after=exc.retry_after,
                )
                await self._store_call(
                    lambda: self._store.schedule_retry(
                        task.task_id,
                        run.run_id,
                        error,
                        delay=delay,
                        new_job=exc.job_failed,
                        sealed_credentials=delivery.message.credentials,
                    )
                )
                await self.hooks.on_retry(run, exc, delay)
                return ACK
            await self._store_call(lambda: self._store.fail(task.task_id, run.run_id, error))
        except (FailedPrecondition, NotFound):
            # Cancelled, deleted or taken over meanwhile.
            await self.hooks.on_abandon(run, "run ended before its failure was recorded")
            return ACK
        await self.hooks.on_fail(run, exc)
        if exc.retryable:
            # Exhausted retries go to the dead-letter queue for an operator to inspect or requeue.
            await self.hooks.on_dead_letter(delivery, "attempts exhausted")
            return DEAD_LETTER
        return ACK

    async def _reroute(self, run: Run, detour: Reroute) -> Verdict:
        """Hand the task to a fallback (its provider's queue gets the run message)."""
        try:
            await self._store_call(
                lambda: self._store.reroute(
                    run.task.task_id, run.run_id, detour.target, detour.error
                )
            )
        except (FailedPrecondition, NotFound) as exc:
            log.info("not re-routed: %s", exc.message)
            await self.hooks.on_abandon(run, "run ended before it was re-routed")
            return ACK
        await self.hooks.on_reroute(run, detour.target)
        return ACK

    async def _fail_fast(self, run: Run, delivery: Delivery, error: task_pb2.TaskError) -> Verdict:
        """Fail the task without calling its provider; the message goes to the dead letters,
        from which an operator's requeue runs it again (RetryTask) once the provider is back."""
        try:
            await self._store_call(lambda: self._store.fail(run.task.task_id, run.run_id, error))
        except (FailedPrecondition, NotFound):
            await self.hooks.on_abandon(run, "run ended before its failure was recorded")
            return ACK
        refused = ProviderError(
            error.message,
            code=error.code,
            error_class=ErrorClass(error.error_class) if error.error_class else None,
        )
        await self.hooks.on_fail(run, refused)
        await self.hooks.on_dead_letter(delivery, error.code.lower())
        return DEAD_LETTER

    async def _store_call(self, make: Callable[[], Awaitable[T]]) -> T:
        """A lifecycle call after the provider answered: worth riding out a short task-store
        outage (a restart) for, since handing the message back would cost a second provider
        call once the lease lapses. Retries with backoff within half the lease."""
        deadline = time.monotonic() + self._lease / 2
        delay = 0.2
        while True:
            try:
                return await make()
            except Unavailable:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _timed(self, run: Run, operation: str, pending: Awaitable[T]) -> T:
        await self.hooks.before_call(run, operation)
        started = time.perf_counter()
        error: ProviderError | None = None
        try:
            async with asyncio.timeout(self._settings.call_timeout_seconds):
                return await pending
        except TimeoutError:
            error = ProviderTimeout(
                f"provider call timed out after {self._settings.call_timeout_seconds}s",
                code="PROVIDER_TIMEOUT",
            )
            raise error from None
        except ProviderError as exc:
            error = exc
            raise
        finally:
            await self.hooks.after_call(run, operation, time.perf_counter() - started, error)

    async def _leased(self, run: Run, operation: str, pending: Awaitable[T]) -> T:
        """Run a provider call while renewing the run's lease every third of it; if the run
        is lost meanwhile (cancelled, taken over) the call is abandoned."""
        return await self._keeping_lease(run, self._timed(run, operation, pending))

    async def _keeping_lease(self, run: Run, pending: Awaitable[T]) -> T:
        """Await ``pending`` while renewing the run's lease every third of it; RunLost (and
        ``pending`` cancelled) when the run ends meanwhile."""
        call = asyncio.ensure_future(pending)
        while True:
            done, _ = await asyncio.wait({call}, timeout=self._lease / 3)
            if done:
                return call.result()
            try:
                await self._store.heartbeat(run.task.task_id, run.run_id, lease=self._lease)
            except (FailedPrecondition, NotFound):
                call.cancel()
                with contextlib.suppress(asyncio.CancelledError, ProviderError):
                    await call
                raise RunLost(f"run {run.run_id} ended while its provider call ran") from None
            except Unavailable as exc:
                log.warning("lease not renewed: %s", exc)


def _served(task: task_pb2.Task) -> task_pb2.Task:
    """The task as the serving provider's adapter sees it: once a circuit breaker re-routed it,
    ``provider`` and ``model`` are the fallback's (the stored request keeps its own)."""
    served = task.served_by
    if not served.model or (served.provider, served.model) == (task.provider, task.model):
        return task
    view = task_pb2.Task()
    view.CopyFrom(task)
    view.provider, view.model = served.provider, served.model
    return view


class RunLost(Exception):
    """The run was cancelled or taken over while its provider call ran: nothing to record."""
