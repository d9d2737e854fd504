"""Client of the internal TaskStoreService, with gRPC failures mapped back into GenHub errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from genhub.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    GenHubError,
    Internal,
    InvalidArgument,
    NotFound,
    StoreError,
)
from genhub.store.v1 import task_store_pb2 as pb
from genhub.store.v1 import task_store_pb2_grpc
from genhub.v1 import provider_pb2, task_pb2

T = TypeVar("T")
_DETAILS_KEY = "grpc-status-details-bin"
# A bug answers the same way however often it is asked: not retryable, unlike UNAVAILABLE.
_SERVER_BUGS = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
CALL_TIMEOUT = 10.0
SEARCH_TIMEOUT = 30.0


def from_rpc_error(exc: grpc.aio.AioRpcError) -> GenHubError:
    """The GenHub error a failed task-store call stands for."""
    reason, metadata, violations = "", {}, []
    for key, value in exc.trailing_metadata() or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(info):
                    reason, metadata = info.reason, dict(info.metadata)
                elif detail.Unpack(bad):
                    violations = [
                        FieldViolation(v.field, v.description) for v in bad.field_violations
                    ]
    message = exc.details() or ""
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(violations or [FieldViolation("", message)])
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message, reason=reason, metadata=metadata)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(message, reason=reason, metadata=metadata)
    if code == grpc.StatusCode.ABORTED:
        return Aborted(message, reason=reason, metadata=metadata)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(message, reason=reason, metadata=metadata)
    if code in _SERVER_BUGS:
        return Internal(f"task-store failed internally: {code.name}: {message}")
    return StoreError(f"task-store call failed: {code.name}: {message}")


async def call(
    method: Callable[..., Awaitable[T]], request: Any, deadline: float = CALL_TIMEOUT
) -> T:
    """One task-store RPC with a deadline, its failure raised as the GenHub error it stands for.

    Every task-store client (tasks, providers, users) calls through here.
    """
    try:
        return await method(request, timeout=deadline, wait_for_ready=True)
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: a run to do, or the reason there is none.

    ``skip`` is ``SKIP_REASON_UNSPECIFIED`` when ``run_id`` names a claimed run; ``task`` is the
    task after the claim (or as it is, when skipped; empty when it does not exist);
    ``retry_after`` (seconds) is set with ``SKIP_REASON_LEASED``.
    """

    task: task_pb2.Task
    run_id: str
    skip: pb.SkipReason.ValueType = pb.SKIP_REASON_UNSPECIFIED
    retry_after: float = 0.0

    @property
    def claimed(self) -> bool:
        """Whether a run was claimed."""
        return self.skip == pb.SKIP_REASON_UNSPECIFIED


def duration(seconds: float) -> duration_pb2.Duration:
    """A Duration of ``seconds``."""
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


class TaskLifecycle(Protocol):
    """The named lifecycle operations a worker uses: task-store's gRPC API, or task-store's own
    ``Lifecycle`` in-process (tests). Refusals raise FailedPrecondition (reason STATUS_MISMATCH
    or RUN_MISMATCH); a missing task raises NotFound."""

    async def claim(
        self,
        task_id: str,
        *,
        run_id: str = "",
        lease: float,
        max_attempts: int,
        provider: str = "",
    ) -> Claim:
        """Start a run (or continue ``run_id``) of a task ``provider`` serves; see
        ClaimTaskRequest."""
        ...

    async def record_job(
        self,
        task_id: str,
        run_id: str,
        job_id: str,
        *,
        poll_after: float,
        lease: float,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """Store a provider job id and schedule its first poll."""
        ...

    async def heartbeat(
        self,
        task_id: str,
        run_id: str,
        *,
        lease: float,
        poll_after: float | None = None,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """Renew the run's lease; with ``poll_after``, schedule the next poll."""
        ...

    async def complete(
        self, task_id: str, run_id: str, result: task_pb2.TaskResult, usage: task_pb2.Usage
    ) -> task_pb2.Task:
        """running -> succeeded with the result."""
        ...

    async def schedule_retry(
        self,
        task_id: str,
        run_id: str,
        error: task_pb2.TaskError,
        *,
        delay: float,
        new_job: bool = False,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """running -> queued, with a retry message after ``delay`` seconds."""
        ...

    async def fail(self, task_id: str, run_id: str, error: task_pb2.TaskError) -> task_pb2.Task:
        """running -> failed."""
        ...

    async def reroute(
        self,
        task_id: str,
        run_id: str,
        target: task_pb2.ModelRef,
        error: task_pb2.TaskError,
    ) -> task_pb2.Task:
        """running -> queued on ``target``'s queue (one of the task's fallbacks), ending the run;
        ``error`` says why (the serving provider's circuit breaker is open)."""
        ...


class TaskStoreClient:
    """Typed calls to task-store. Every call has a deadline; failures raise GenHub errors."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel  # shared by the other task-store clients
        self._stub = task_store_pb2_grpc.TaskStoreServiceStub(channel)

    async def create(
        self, task: task_pb2.Task, sealed_credentials: str = ""
    ) -> tuple[task_pb2.Task, bool]:
        """Store and enqueue a new task; ``created`` is False for a repeated idempotency key."""
        request = pb.CreateTaskRequest(task=task, sealed_credentials=sealed_credentials)
        resp = await call(self._stub.CreateTask, request)
        return resp.task, resp.created

    async def get(self, task_id: str) -> task_pb2.Task:
        """A task; NotFound when there is none."""
        return (await call(self._stub.GetTask, pb.GetTaskRequest(task_id=task_id))).task

    async def list_tasks(self, request: pb.ListTasksRequest) -> pb.ListTasksResponse:
        """One page of tasks."""
        return await call(self._stub.ListTasks, request)

    async def claim(
        self,
        task_id: str,
        *,
        run_id: str = "",
        lease: float,
        max_attempts: int,
        provider: str = "",
    ) -> Claim:
        """See TaskLifecycle.claim."""
        request = pb.ClaimTaskRequest(
            task_id=task_id,
            run_id=run_id,
            lease=duration(lease),
            max_attempts=max_attempts,
            provider=provider,
        )
        resp = await call(self._stub.ClaimTask, request)
        return Claim(
            resp.task, resp.run_id, resp.skip_reason, resp.retry_after.ToNanoseconds() / 1e9
        )

    async def record_job(
        self,
        task_id: str,
        run_id: str,
        job_id: str,
        *,
        poll_after: float,
        lease: float,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """See TaskLifecycle.record_job."""
        request = pb.RecordJobRequest(
            task_id=task_id,
            run_id=run_id,
            provider_job_id=job_id,
            poll_after=duration(poll_after),
            lease=duration(lease),
            sealed_credentials=sealed_credentials,
        )
        return (await call(self._stub.RecordJob, request)).task

    async def heartbeat(
        self,
        task_id: str,
        run_id: str,
        *,
        lease: float,
        poll_after: float | None = None,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """See TaskLifecycle.heartbeat."""
        request = pb.HeartbeatRequest(
            task_id=task_id,
            run_id=run_id,
            lease=duration(lease),
            poll_after=duration(poll_after) if poll_after is not None else None,
            sealed_credentials=sealed_credentials,
        )
        return (await call(self._stub.Heartbeat, request)).task

    async def complete(
        self, task_id: str, run_id: str, result: task_pb2.TaskResult, usage: task_pb2.Usage
    ) -> task_pb2.Task:
        """See TaskLifecycle.complete."""
        request = pb.CompleteTaskRequest(task_id=task_id, run_id=run_id, result=result, usage=usage)
        return (await call(self._stub.CompleteTask, request)).task

    async def schedule_retry(
        self,
        task_id: str,
        run_id: str,
        error: task_pb2.TaskError,
        *,
        delay: float,
        new_job: bool = False,
        sealed_credentials: str = "",
    ) -> task_pb2.Task:
        """See TaskLifecycle.schedule_retry."""
        request = pb.ScheduleRetryRequest(
            task_id=task_id,
            run_id=run_id,
            error=error,
            delay=duration(delay),
            new_job=new_job,
            sealed_credentials=sealed_credentials,
        )
        return (await call(self._stub.ScheduleRetry, request)).task

    async def fail(self, task_id: str, run_id: str, error: task_pb2.TaskError) -> task_pb2.Task:
        """See TaskLifecycle.fail."""
        request = pb.FailTaskRequest(task_id=task_id, run_id=run_id, error=error)
        return (await call(self._stub.FailTask, request)).task

    async def reroute(
        self,
        task_id: str,
        run_id: str,
        target: task_pb2.ModelRef,
        error: task_pb2.TaskError,
    ) -> task_pb2.Task:
        """See TaskLifecycle.reroute."""
        request = pb.RerouteTaskRequest(task_id=task_id, run_id=run_id, target=target, error=error)
        return (await call(self._stub.RerouteTask, request)).task

    async def cancel(self, task_id: str) -> task_pb2.Task:
        """Cancel an unfinished task; FailedPrecondition (TASK_FINISHED) once finished."""
        return (await call(self._stub.CancelTask, pb.CancelTaskRequest(task_id=task_id))).task

    async def retry(self, task_id: str) -> task_pb2.Task:
        """Run a failed task again; FailedPrecondition unless it failed."""
        return (await call(self._stub.RetryTask, pb.RetryTaskRequest(task_id=task_id))).task

    async def expire(self, task_id: str) -> task_pb2.Task:
        """succeeded -> expired (its stored media purged for age); FailedPrecondition
        (NOT_SUCCEEDED) for any other status."""
        return (await call(self._stub.ExpireTask, pb.ExpireTaskRequest(task_id=task_id))).task

    async def delete(self, task_id: str) -> None:
        """Remove a task."""
        await call(self._stub.DeleteTask, pb.DeleteTaskRequest(task_id=task_id))

    async def search(self, request: pb.SearchTasksRequest) -> pb.SearchTasksResponse:
        """Prompt search: a scan of every stored prompt on FerretDB, hence its longer deadline."""
        return await call(self._stub.SearchTasks, request, deadline=SEARCH_TIMEOUT)

    async def put_provider(self, provider: provider_pb2.Provider) -> provider_pb2.Provider:
        """Store a provider's declared catalogue."""
        resp = await call(self._stub.PutProvider, pb.PutProviderRequest(provider=provider))
        return resp.provider

    async def list_providers(self) -> list[provider_pb2.Provider]:
        """Every stored provider."""
        resp = await call(self._stub.ListProviders, pb.ListProvidersRequest())
        return list(resp.providers)


# Spread calls over every address the target resolves to, not the first one only (gRPC's
# default, pick_first): with the chart's headless Service a name resolves to every task-store
# pod, and an HTTP/2 channel would otherwise send all its calls to one of them for its lifetime.
# https://github.com/grpc/grpc/blob/master/doc/load-balancing.md
CHANNEL_OPTIONS = (
    ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
)


@contextlib.asynccontextmanager
async def connect(address: str) -> AsyncIterator[TaskStoreClient]:
    """A client over one channel to ``address`` (a gRPC target: ``host:port``, resolved by DNS
    to every address the name has, or ``ipv4:a:p,b:q``), calls spread round-robin over the
    addresses and reused by every call; closed on exit."""
    channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield TaskStoreClient(channel)
    finally:
        await channel.close()
