"""The internal TaskStoreService RPCs: thin translation onto the lifecycle and the repository."""

from __future__ import annotations

from typing import Any

import grpc

from genhub.common import logging as glog
from genhub.common.errors import InvalidArgument
from genhub.store.v1 import task_store_pb2 as pb
from genhub.store.v1 import task_store_pb2_grpc
from genhub.taskstore import documents, states
from genhub.taskstore.operations import Lifecycle
from genhub.taskstore.providers import ProviderRepository
from genhub.taskstore.task_repository import (
    TaskQuery,
    decode_page_token,
    encode_page_token,
    page_size,
)
from genhub.v1 import task_pb2

Context = grpc.aio.ServicerContext[Any, Any]
MAX_QUERY_CHARS = 200  # a search scans every task on FerretDB: keep each comparison cheap


def _require(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument.one(field, "is required")


def _task_id(task_id: str) -> str:
    _require("task_id", task_id)
    glog.task_id.set(task_id)
    return task_id


def _seconds(duration: Any, field: str, *, required: bool = False) -> float:
    seconds = float(duration.ToNanoseconds()) / 1e9
    if seconds < 0 or (required and seconds <= 0):
        raise InvalidArgument.one(field, "must be positive")
    return seconds


class TaskStoreServicer(task_store_pb2_grpc.TaskStoreServiceServicer):
    """Implements genhub.store.v1.TaskStoreService."""

    def __init__(self, lifecycle: Lifecycle, providers: ProviderRepository) -> None:
        self._lifecycle = lifecycle
        self._repo = lifecycle.repository
        self._providers = providers

    async def CreateTask(
        self, request: pb.CreateTaskRequest, context: Context
    ) -> pb.CreateTaskResponse:
        """Store a new queued task and publish it (or return the one with the same key)."""
        task = request.task
        if task.type == task_pb2.TASK_TYPE_UNSPECIFIED or task.WhichOneof("spec") is None:
            raise InvalidArgument.one("task.type", "a task needs a type and a matching spec")
        _require("task.provider", task.provider)
        stored, created = await self._lifecycle.create(task, request.sealed_credentials)
        glog.task_id.set(stored.task_id)
        return pb.CreateTaskResponse(task=stored, created=created)

    async def GetTask(self, request: pb.GetTaskRequest, context: Context) -> pb.GetTaskResponse:
        """A task."""
        return pb.GetTaskResponse(task=await self._lifecycle.get(_task_id(request.task_id)))

    async def ListTasks(
        self, request: pb.ListTasksRequest, context: Context
    ) -> pb.ListTasksResponse:
        """A page of tasks, newest first."""
        query = TaskQuery(
            user_id=request.user_id,
            type=documents.TYPE_NAMES.get(request.type, ""),
            statuses=tuple(states.name(s) for s in request.statuses if s in states.NAMES),
            provider=request.provider,
        )
        tasks, token = await self._page(query, request.page_size, request.page_token)
        return pb.ListTasksResponse(tasks=tasks, next_page_token=token)

    async def SearchTasks(
        self, request: pb.SearchTasksRequest, context: Context
    ) -> pb.SearchTasksResponse:
        """Tasks whose prompt contains the query, literally and case-insensitively."""
        if not request.query.strip():
            raise InvalidArgument.one("query", "is required")
        if len(request.query) > MAX_QUERY_CHARS:
            raise InvalidArgument.one("query", f"must be at most {MAX_QUERY_CHARS} characters")
        query = TaskQuery(
            user_id=request.user_id,
            type=documents.TYPE_NAMES.get(request.type, ""),
            statuses=(states.name(request.status),) if request.status in states.NAMES else (),
            prompt_contains=request.query,
        )
        tasks, token = await self._page(query, request.page_size, request.page_token)
        return pb.SearchTasksResponse(tasks=tasks, next_page_token=token)

    async def _page(
        self, query: TaskQuery, size: int, token: str
    ) -> tuple[list[task_pb2.Task], str]:
        before = decode_page_token(token) if token else ""
        limit = page_size(size or 50)
        docs = await self._repo.find(query, limit + 1, before)
        more = len(docs) > limit
        docs = docs[:limit]
        next_token = encode_page_token(docs[-1]["_id"]) if more and docs else ""
        return [documents.from_document(d) for d in docs], next_token

    async def ClaimTask(
        self, request: pb.ClaimTaskRequest, context: Context
    ) -> pb.ClaimTaskResponse:
        """Start (or continue) a run, or say why not."""
        if request.max_attempts < 1:
            raise InvalidArgument.one("max_attempts", "must be at least 1")
        claim = await self._lifecycle.claim(
            _task_id(request.task_id),
            run_id=request.run_id,
            lease=_seconds(request.lease, "lease", required=True),
            max_attempts=request.max_attempts,
            provider=request.provider,
        )
        response = pb.ClaimTaskResponse(
            task=claim.task, run_id=claim.run_id, skip_reason=claim.skip
        )
        if claim.retry_after:
            response.retry_after.FromNanoseconds(round(claim.retry_after * 1e9))
        return response

    async def RecordJob(
        self, request: pb.RecordJobRequest, context: Context
    ) -> pb.RecordJobResponse:
        """Store a provider job id and schedule its first poll."""
        _require("run_id", request.run_id)
        _require("provider_job_id", request.provider_job_id)
        task = await self._lifecycle.record_job(
            _task_id(request.task_id),
            request.run_id,
            request.provider_job_id,
            poll_after=_seconds(request.poll_after, "poll_after"),
            lease=_seconds(request.lease, "lease", required=True),
            sealed_credentials=request.sealed_credentials,
        )
        return pb.RecordJobResponse(task=task)

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        """Renew a run's lease (and schedule a poll)."""
        _require("run_id", request.run_id)
        poll_after = None
        if request.HasField("poll_after"):
            poll_after = _seconds(request.poll_after, "poll_after")
        task = await self._lifecycle.heartbeat(
            _task_id(request.task_id),
            request.run_id,
            lease=_seconds(request.lease, "lease", required=True),
            poll_after=poll_after,
            sealed_credentials=request.sealed_credentials,
        )
        return pb.HeartbeatResponse(task=task)

    async def CompleteTask(
        self, request: pb.CompleteTaskRequest, context: Context
    ) -> pb.CompleteTaskResponse:
        """running -> succeeded with the result, if the run is still current."""
        _require("run_id", request.run_id)
        task = await self._lifecycle.complete(
            _task_id(request.task_id), request.run_id, request.result, request.usage
        )
        return pb.CompleteTaskResponse(task=task)

    async def ScheduleRetry(
        self, request: pb.ScheduleRetryRequest, context: Context
    ) -> pb.ScheduleRetryResponse:
        """running -> queued, with a retry message after the delay."""
        _require("run_id", request.run_id)
        task = await self._lifecycle.schedule_retry(
            _task_id(request.task_id),
            request.run_id,
            request.error,
            delay=_seconds(request.delay, "delay"),
            new_job=request.new_job,
            sealed_credentials=request.sealed_credentials,
        )
        return pb.ScheduleRetryResponse(task=task)

    async def FailTask(self, request: pb.FailTaskRequest, context: Context) -> pb.FailTaskResponse:
        """running -> failed."""
        _require("run_id", request.run_id)
        task = await self._lifecycle.fail(_task_id(request.task_id), request.run_id, request.error)
        return pb.FailTaskResponse(task=task)

    async def CancelTask(
        self, request: pb.CancelTaskRequest, context: Context
    ) -> pb.CancelTaskResponse:
        """Cancel an unfinished task."""
        return pb.CancelTaskResponse(task=await self._lifecycle.cancel(_task_id(request.task_id)))

    async def RetryTask(
        self, request: pb.RetryTaskRequest, context: Context
    ) -> pb.RetryTaskResponse:
        """Queue a failed task again."""
        return pb.RetryTaskResponse(task=await self._lifecycle.retry(_task_id(request.task_id)))

    async def ExpireTask(
        self, request: pb.ExpireTaskRequest, context: Context
    ) -> pb.ExpireTaskResponse:
        """succeeded -> expired (the media retention sweep)."""
        return pb.ExpireTaskResponse(task=await self._lifecycle.expire(_task_id(request.task_id)))

    async def RerouteTask(
        self, request: pb.RerouteTaskRequest, context: Context
    ) -> pb.RerouteTaskResponse:
        """running -> queued for one of the task's fallbacks."""
        _require("run_id", request.run_id)
        _require("target.provider", request.target.provider)
        _require("target.model", request.target.model)
        task = await self._lifecycle.reroute(
            _task_id(request.task_id), request.run_id, request.target, request.error
        )
        return pb.RerouteTaskResponse(task=task)

    async def DeleteTask(
        self, request: pb.DeleteTaskRequest, context: Context
    ) -> pb.DeleteTaskResponse:
        """Remove a task."""
        await self._lifecycle.delete(_task_id(request.task_id))
        return pb.DeleteTaskResponse()

    async def PutProvider(
        self, request: pb.PutProviderRequest, context: Context
    ) -> pb.PutProviderResponse:
        """Store the catalogue a provider's workers declare."""
        _require("provider.name", request.provider.name)
        return pb.PutProviderResponse(provider=await self._providers.put_declared(request.provider))

    async def ListProviders(
        self, request: pb.ListProvidersRequest, context: Context
    ) -> pb.ListProvidersResponse:
        """Every stored provider."""
        return pb.ListProvidersResponse(providers=await self._providers.list_providers())
