"""Client of the internal TaskStoreService, with gRPC failures mapped back into GenHub errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

from genhub.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    GenHubError,
    InvalidArgument,
    NotFound,
    StoreError,
)
from genhub.store.v1 import task_store_pb2 as pb
from genhub.store.v1 import task_store_pb2_grpc
from genhub.v1 import provider_pb2, task_pb2

T = TypeVar("T")
_DETAILS_KEY = "grpc-status-details-bin"
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


class TaskStoreClient:
    """Typed calls to task-store. Every call has a deadline; failures raise GenHub errors."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel  # shared by the other task-store clients
        self._stub = task_store_pb2_grpc.TaskStoreServiceStub(channel)

    async def _call(
        self, method: Callable[..., Awaitable[T]], request: Any, deadline: float = CALL_TIMEOUT
    ) -> T:
        return await call(method, request, deadline)

    async def insert(self, task: task_pb2.Task) -> tuple[task_pb2.Task, bool]:
        """Store a new task; ``created`` is False for a repeated idempotency key."""
        resp = await self._call(self._stub.InsertTask, pb.InsertTaskRequest(task=task))
        return resp.task, resp.created

    async def get(self, task_id: str) -> tuple[task_pb2.Task, str]:
        """A task and its current run id."""
        resp = await self._call(self._stub.GetTask, pb.GetTaskRequest(task_id=task_id))
        return resp.task, resp.run_id

    async def list_tasks(self, request: pb.ListTasksRequest) -> pb.ListTasksResponse:
        """One page of tasks."""
        return await self._call(self._stub.ListTasks, request)

    async def transition(
        self,
        task_id: str,
        from_statuses: list[task_pb2.TaskStatus.ValueType],
        to_status: task_pb2.TaskStatus.ValueType,
        *,
        expected_run_id: str = "",
        start_run: bool = False,
        error: task_pb2.TaskError | None = None,
        provider_job_id: str = "",
        clear_provider_job_id: bool = False,
    ) -> tuple[task_pb2.Task, str]:
        """A compare-and-set state change; FailedPrecondition when refused."""
        request = pb.TransitionTaskRequest(
            task_id=task_id,
            from_statuses=from_statuses,
            to_status=to_status,
            expected_run_id=expected_run_id,
            start_run=start_run,
            error=error,
            provider_job_id=provider_job_id,
            clear_provider_job_id=clear_provider_job_id,
        )
        resp = await self._call(self._stub.TransitionTask, request)
        return resp.task, resp.run_id

    async def record_result(
        self, task_id: str, run_id: str, result: task_pb2.TaskResult, usage: task_pb2.Usage
    ) -> task_pb2.Task:
        """running -> succeeded with the result, if ``run_id`` is still the task's run."""
        request = pb.RecordResultRequest(task_id=task_id, run_id=run_id, result=result, usage=usage)
        return (await self._call(self._stub.RecordResult, request)).task

    async def delete(self, task_id: str) -> None:
        """Remove a task."""
        await self._call(self._stub.DeleteTask, pb.DeleteTaskRequest(task_id=task_id))

    async def search(self, request: pb.SearchTasksRequest) -> pb.SearchTasksResponse:
        """Prompt search: a scan of every stored prompt on FerretDB, hence its longer deadline."""
        return await self._call(self._stub.SearchTasks, request, deadline=SEARCH_TIMEOUT)

    async def put_provider(self, provider: provider_pb2.Provider) -> provider_pb2.Provider:
        """Store a provider's declared catalogue."""
        resp = await self._call(self._stub.PutProvider, pb.PutProviderRequest(provider=provider))
        return resp.provider

    async def list_providers(self) -> list[provider_pb2.Provider]:
        """Every stored provider."""
        resp = await self._call(self._stub.ListProviders, pb.ListProvidersRequest())
        return list(resp.providers)


@contextlib.asynccontextmanager
async def connect(address: str) -> AsyncIterator[TaskStoreClient]:
    """A client over a channel to ``address``, closed on exit."""
    channel = grpc.aio.insecure_channel(address)
    try:
        yield TaskStoreClient(channel)
    finally:
        await channel.close()
