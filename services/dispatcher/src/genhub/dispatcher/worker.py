"""The worker: consume a provider's queue, run each task through its adapter, record, then ack.

For every message: read the task (skip it if deleted, cancelled or finished), claim it with a
compare-and-set to ``running`` (which counts an attempt and issues a run id), call the adapter,
check the output, record the result guarded by the run id, and only then ack. A worker killed
at any point loses nothing: the broker redelivers, and the run id makes a second run's result
the only one recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from enum import Enum
from typing import TypeVar

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from genhub.common import logging as glog
from genhub.common import topology
from genhub.common.errors import FailedPrecondition, NotFound, Unavailable
from genhub.common.metrics import priority_label, type_label
from genhub.common.store_client import TaskStoreClient
from genhub.common.topology import MessageKind, TaskMessage
from genhub.dispatcher import metrics
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.credentials import ConfigWatcher
from genhub.dispatcher.outcome import check_output
from genhub.providers.sdk import (
    Call,
    Finished,
    Pending,
    PermanentError,
    Provider,
    ProviderError,
    RetryableError,
)
from genhub.v1 import provider_pb2, task_pb2

log = logging.getLogger(__name__)
S = task_pb2
T = TypeVar("T")
TERMINAL = frozenset(
    {S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELLED, S.TASK_STATUS_EXPIRED}
)
# Pause before handing a message back when task-store or the broker is down, so an outage is
# not a hot loop of redeliveries.
INFRA_BACKOFF_SECONDS = 1.0


class Action(Enum):
    """What happens to the delivery once the task is handled."""

    ACK = "ack"
    DEAD_LETTER = "dead-letter"
    REQUEUE = "requeue"


class Worker:
    """Consumes one provider's work queue with at most ``concurrency`` tasks in flight."""

    def __init__(
        self,
        settings: DispatcherSettings,
        provider: Provider,
        store: TaskStoreClient,
        channel: AbstractChannel,
        config: ConfigWatcher,
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._store = store
        self._channel = channel
        self._config = config
        self._declared = {m.model: m for m in provider.catalogue()}
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def _model(self, model_id: str) -> provider_pb2.Model | None:
        # The stored catalogue (with operator overrides) wins over what the adapter declares.
        if self._config.models is not None:
            for model in self._config.models:
                if model.model == model_id:
                    return model
        return self._declared.get(model_id)

    def _call(self, task: task_pb2.Task, model: provider_pb2.Model, body: TaskMessage) -> Call:
        if task.request_credentials and not body.credentials:
            raise PermanentError(
                "the credentials given with the create request were lost with its queue message",
                code="CREDENTIALS_UNAVAILABLE",
            )
        config = self._config.resolve(body.credentials)
        return Call(task=task, model=model, attempt=task.attempts, config=config)

    async def start(self) -> None:
        """Declare the topology and start consuming."""
        await self._channel.set_qos(prefetch_count=self._settings.concurrency)
        await topology.declare(self._channel, self._provider.name)
        self._queue = await self._channel.get_queue(topology.work_queue(self._provider.name))
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def drain(self, grace: float) -> None:
        """Stop taking messages; give in-flight tasks ``grace`` seconds, then hand them back."""
        if self._queue is not None and self._consumer_tag is not None:
            await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        if self._in_flight:
            log.info("draining %d in-flight tasks", len(self._in_flight))
            _, pending = await asyncio.wait(self._in_flight, timeout=grace)
            for task in pending:
                task.cancel()  # unacked deliveries return to the queue when the channel closes
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        job = asyncio.create_task(self._deliver(message))
        self._in_flight.add(job)
        job.add_done_callback(self._in_flight.discard)

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        name = self._provider.name
        metrics.IN_FLIGHT.labels(name).inc()
        try:
            try:
                body = TaskMessage.decode(message.body)
            except ValueError as exc:
                log.error("unreadable message dead-lettered: %s", exc)
                await message.reject(requeue=False)
                return
            glog.task_id.set(body.task_id)
            try:
                action = await self.handle(body, redelivered=bool(message.redelivered))
            except Unavailable as exc:
                log.warning("infrastructure unavailable, message handed back: %s", exc)
                await asyncio.sleep(INFRA_BACKOFF_SECONDS)
                action = Action.REQUEUE
            if action is Action.ACK:
                await message.ack()
            elif action is Action.DEAD_LETTER:
                metrics.DEAD_LETTERS.labels(name).inc()
                await message.reject(requeue=False)
            else:
                await message.nack(requeue=True)
        except asyncio.CancelledError:
            raise  # draining: the delivery stays unacked and returns to the queue
        except Exception:
            log.exception("unexpected error; message handed back")
            await message.nack(requeue=True)
        finally:
            metrics.IN_FLIGHT.labels(name).dec()

    async def handle(self, body: TaskMessage, *, redelivered: bool) -> Action:
        """Process one message; returns what to do with its delivery."""
        try:
            task, run_id = await self._store.get(body.task_id)
        except NotFound:
            log.info("task deleted; message dropped")
            return Action.ACK
        if body.kind is MessageKind.POLL:
            return await self._poll(body, task, run_id)
        if task.status in TERMINAL:
            return Action.ACK
        model = self._model(task.model)
        if model is None:
            # An operator may have just added it: re-read the catalogue before giving up.
            await self._config.refresh()
            model = self._model(task.model)
        if model is None:
            return await self._fail_unrouted(task)
        if (
            redelivered
            and task.status == S.TASK_STATUS_RUNNING
            and task.attempts >= self._settings.max_attempts
        ):
            # Every run so far died with its worker (a poison task: a crash, an OOM kill).
            # Redelivery alone would retry it forever; stop and keep the message for operators.
            with contextlib.suppress(FailedPrecondition):
                await self._store.transition(
                    task.task_id,
                    [S.TASK_STATUS_RUNNING],
                    S.TASK_STATUS_FAILED,
                    error=S.TaskError(
                        code="WORKER_CRASHED",
                        message=f"the worker running it stopped {task.attempts} times",
                    ),
                )
            return Action.DEAD_LETTER
        sources = [S.TASK_STATUS_PENDING, S.TASK_STATUS_QUEUED]
        if redelivered:
            # Our earlier delivery died with its worker: take the run over.
            sources.append(S.TASK_STATUS_RUNNING)
        try:
            task, run_id = await self._store.transition(
                task.task_id, sources, S.TASK_STATUS_RUNNING, start_run=True
            )
        except FailedPrecondition:
            log.info("task not claimable (already claimed, cancelled or finished); skipped")
            return Action.ACK
        if task.attempts == 1:
            wait = time.time() - task.create_time.ToDatetime().timestamp()
            metrics.QUEUE_WAIT.labels(task.provider, priority_label(task.priority)).observe(wait)
        call = Call(task=task, model=model, attempt=task.attempts)
        try:
            call = self._call(task, model, body)
            if model.long_running:
                return await self._start_job(body, call, run_id)
            finished = await self._timed("generate", call, self._provider.generate(call))
            return await self._finish(call, run_id, finished)
        except ProviderError as exc:
            return await self._failed(body, call, run_id, exc)

    async def _start_job(self, body: TaskMessage, call: Call, run_id: str) -> Action:
        task = call.task
        if task.provider_job_id:
            # Restarted after a crash: the job exists (and is paid for); poll it, never resubmit.
            return await self._schedule_poll(body, task, 0.0)
        submitted = await self._timed("submit", call, self._provider.submit(call))
        # Store the job id before any waiting, so a crash from here on never submits again.
        try:
            await self._store.transition(
                task.task_id,
                [S.TASK_STATUS_RUNNING],
                S.TASK_STATUS_RUNNING,
                expected_run_id=run_id,
                provider_job_id=submitted.job_id,
            )
        except FailedPrecondition:
            # Cancelled (or taken over) while submitting: do not leave a paid job running.
            try:
                await self._provider.cancel(call, submitted.job_id)
            except ProviderError as exc:
                log.warning("provider job not cancelled: %s", exc)
            return Action.ACK
        return await self._schedule_poll(body, task, submitted.poll_after)

    async def _schedule_poll(self, body: TaskMessage, task: task_pb2.Task, after: float) -> Action:
        message = TaskMessage(task.task_id, MessageKind.POLL, body.retry, body.credentials)
        # Polls come well before the sweeper would call the run lost, whatever the provider says.
        delay = min(max(after, 0.5), self._settings.stale_running_seconds / 3)
        await topology.publish(
            self._channel, task.provider, message, priority=task.priority, delay=delay
        )
        return Action.ACK

    async def _poll(self, body: TaskMessage, task: task_pb2.Task, run_id: str) -> Action:
        model = self._model(task.model)
        if task.status != S.TASK_STATUS_RUNNING or not task.provider_job_id or model is None:
            if task.status == S.TASK_STATUS_CANCELLED and task.provider_job_id and model:
                call = Call(task=task, model=model, attempt=task.attempts)
                try:
                    await self._provider.cancel(call, task.provider_job_id)
                except ProviderError as exc:
                    log.warning("provider job not cancelled: %s", exc)
            return Action.ACK
        call = Call(task=task, model=model, attempt=task.attempts)
        try:
            call = self._call(task, model, body)
            outcome = await self._timed(
                "poll", call, self._provider.poll(call, task.provider_job_id)
            )
        except ProviderError as exc:
            return await self._failed(body, call, run_id, exc)
        if isinstance(outcome, Pending):
            # A heartbeat (running -> running) so the sweeper sees the job is alive.
            try:
                await self._store.transition(
                    task.task_id,
                    [S.TASK_STATUS_RUNNING],
                    S.TASK_STATUS_RUNNING,
                    expected_run_id=run_id,
                )
            except FailedPrecondition:
                return Action.ACK
            return await self._schedule_poll(body, task, outcome.poll_after)
        try:
            return await self._finish(call, run_id, outcome)
        except ProviderError as exc:
            return await self._failed(body, call, run_id, exc)

    async def _finish(self, call: Call, run_id: str, finished: Finished) -> Action:
        check_output(call.task, finished)
        try:
            task = await self._store.record_result(
                call.task.task_id, run_id, finished.result, finished.usage
            )
        except FailedPrecondition as exc:
            log.info("result discarded: %s", exc.message)
            return Action.ACK
        labels = (task.provider, task.model, type_label(task.type), "succeeded")
        metrics.TASKS.labels(*labels).inc()
        elapsed = task.finish_time.ToNanoseconds() - task.create_time.ToNanoseconds()
        metrics.END_TO_END.labels(*labels).observe(elapsed / 1e9)
        log.info("task succeeded", extra={"attempt": task.attempts, "model": task.model})
        return Action.ACK

    async def _failed(
        self, body: TaskMessage, call: Call, run_id: str, exc: ProviderError
    ) -> Action:
        task = call.task
        error = S.TaskError(code=exc.code, message=exc.message, retryable=exc.retryable)
        attempts_made = body.retry + 1
        if exc.retryable and attempts_made < self._settings.max_attempts:
            delay = topology.backoff_delay(
                attempts_made,
                base=self._settings.backoff_base_seconds,
                cap=self._settings.backoff_cap_seconds,
                retry_after=exc.retry_after,
            )
            metrics.RETRIES.labels(task.provider, task.model, exc.code).inc()
            log.warning(
                "attempt failed, retrying",
                extra={"code": exc.code, "delay_seconds": round(delay, 3)},
            )
            # Publish the retry before giving the task back: a crash between the two leaves a
            # running task for the sweeper, never a queued task without a message.
            retry = TaskMessage(task.task_id, MessageKind.RUN, attempts_made, body.credentials)
            await topology.publish(
                self._channel, task.provider, retry, priority=task.priority, delay=delay
            )
            # A refusal means it was cancelled meanwhile; the retry message will be skipped.
            with contextlib.suppress(FailedPrecondition):
                await self._store.transition(
                    task.task_id,
                    [S.TASK_STATUS_RUNNING],
                    S.TASK_STATUS_QUEUED,
                    expected_run_id=run_id,
                    error=error,
                    clear_provider_job_id=exc.job_failed,
                )
            return Action.ACK
        try:
            await self._store.transition(
                task.task_id,
                [S.TASK_STATUS_RUNNING],
                S.TASK_STATUS_FAILED,
                expected_run_id=run_id,
                error=error,
            )
        except FailedPrecondition:
            return Action.ACK
        metrics.TASKS.labels(task.provider, task.model, type_label(task.type), "failed").inc()
        log.warning("task failed", extra={"code": exc.code, "retryable": exc.retryable})
        # Exhausted retries go to the dead-letter queue for an operator to inspect or requeue.
        return Action.DEAD_LETTER if exc.retryable else Action.ACK

    async def _fail_unrouted(self, task: task_pb2.Task) -> Action:
        error = S.TaskError(
            code="MODEL_NOT_SERVED",
            message=f"no {self._provider.name} worker serves model {task.model!r}",
        )
        with contextlib.suppress(FailedPrecondition):
            await self._store.transition(
                task.task_id,
                [S.TASK_STATUS_PENDING, S.TASK_STATUS_QUEUED],
                S.TASK_STATUS_FAILED,
                error=error,
            )
        return Action.DEAD_LETTER

    async def _timed(self, name: str, call: Call, pending: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.call_timeout_seconds):
                return await pending
        except TimeoutError:
            raise RetryableError(
                f"provider call timed out after {self._settings.call_timeout_seconds}s",
                code="PROVIDER_TIMEOUT",
            ) from None
        finally:
            metrics.RUN_SECONDS.labels(self._provider.name, call.task.model, name).observe(
                time.perf_counter() - started
            )
