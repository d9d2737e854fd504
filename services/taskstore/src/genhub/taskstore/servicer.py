"""The internal TaskStoreService RPCs, over the repository."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import grpc

from genhub.common import logging as glog
from genhub.common.errors import InvalidArgument
from genhub.common.events import EventPublisher
from genhub.common.ids import new_id
from genhub.store.v1 import task_store_pb2 as pb
from genhub.store.v1 import task_store_pb2_grpc
from genhub.taskstore.providers import ProviderRepository
from genhub.taskstore.repository import TaskFilter, TaskRepository
from genhub.v1 import task_pb2

Context = grpc.aio.ServicerContext[Any, Any]
MAX_QUERY_CHARS = 200  # a search scans every task: keep each comparison cheap


def _require_id(task_id: str) -> None:
    if not task_id:
        raise InvalidArgument.one("task_id", "is required")
    glog.task_id.set(task_id)


class TaskStoreServicer(task_store_pb2_grpc.TaskStoreServiceServicer):
    """Owns the task state machine; publishes a status event on every change."""

    def __init__(
        self, repository: TaskRepository, providers: ProviderRepository, events: EventPublisher
    ) -> None:
        self._repo = repository
        self._providers = providers
        self._events = events

    async def InsertTask(
        self, request: pb.InsertTaskRequest, context: Context
    ) -> pb.InsertTaskResponse:
        """Store a new pending task (or return the one with the same idempotency key)."""
        task = task_pb2.Task()
        task.CopyFrom(request.task)
        if task.type == task_pb2.TASK_TYPE_UNSPECIFIED or task.WhichOneof("spec") is None:
            raise InvalidArgument.one("task.type", "a task needs a type and a matching spec")
        task.task_id = new_id()
        glog.task_id.set(task.task_id)
        stored, created = await self._repo.insert(task)
        if created:
            await self._events.task_changed(stored)
        return pb.InsertTaskResponse(task=stored, created=created)

    async def GetTask(self, request: pb.GetTaskRequest, context: Context) -> pb.GetTaskResponse:
        """A task and its current run id."""
        _require_id(request.task_id)
        task, run_id = await self._repo.get(request.task_id)
        return pb.GetTaskResponse(task=task, run_id=run_id)

    async def ListTasks(
        self, request: pb.ListTasksRequest, context: Context
    ) -> pb.ListTasksResponse:
        """A page of tasks, newest first."""
        flt = TaskFilter(
            user_id=request.user_id,
            type=request.type,
            statuses=tuple(request.statuses),
            provider=request.provider,
            updated_before=request.updated_before.ToDatetime(tzinfo=UTC)
            if request.HasField("updated_before")
            else None,
        )
        page = await self._repo.list_tasks(flt, request.page_size or 50, request.page_token)
        return pb.ListTasksResponse(tasks=page.tasks, next_page_token=page.next_page_token)

    async def TransitionTask(
        self, request: pb.TransitionTaskRequest, context: Context
    ) -> pb.TransitionTaskResponse:
        """A compare-and-set state change."""
        _require_id(request.task_id)
        task, run_id = await self._repo.transition(
            request.task_id,
            list(request.from_statuses),
            request.to_status,
            expected_run_id=request.expected_run_id,
            start_run=request.start_run,
            error=request.error if request.HasField("error") else None,
            provider_job_id=request.provider_job_id,
            clear_provider_job_id=request.clear_provider_job_id,
        )
        await self._events.task_changed(task)
        return pb.TransitionTaskResponse(task=task, run_id=run_id)

    async def RecordResult(
        self, request: pb.RecordResultRequest, context: Context
    ) -> pb.RecordResultResponse:
        """running -> succeeded with the result, if the run is still current."""
        _require_id(request.task_id)
        if not request.run_id:
            raise InvalidArgument.one("run_id", "is required")
        task = await self._repo.record_result(
            request.task_id, request.run_id, request.result, request.usage
        )
        await self._events.task_changed(task)
        return pb.RecordResultResponse(task=task)

    async def DeleteTask(
        self, request: pb.DeleteTaskRequest, context: Context
    ) -> pb.DeleteTaskResponse:
        """Remove a task."""
        _require_id(request.task_id)
        await self._repo.delete(request.task_id)
        await self._events.task_changed(task_pb2.Task(task_id=request.task_id))
        return pb.DeleteTaskResponse()

    async def SearchTasks(
        self, request: pb.SearchTasksRequest, context: Context
    ) -> pb.SearchTasksResponse:
        """Tasks whose prompt contains the query, literally and case-insensitively."""
        if not request.query.strip():
            raise InvalidArgument.one("query", "is required")
        if len(request.query) > MAX_QUERY_CHARS:
            raise InvalidArgument.one("query", f"must be at most {MAX_QUERY_CHARS} characters")
        flt = TaskFilter(
            user_id=request.user_id,
            type=request.type,
            statuses=(request.status,) if request.status else (),
            prompt_contains=request.query,
        )
        page = await self._repo.list_tasks(flt, request.page_size or 50, request.page_token)
        return pb.SearchTasksResponse(tasks=page.tasks, next_page_token=page.next_page_token)

    async def PutProvider(
        self, request: pb.PutProviderRequest, context: Context
    ) -> pb.PutProviderResponse:
        """Store the catalogue a provider's workers declare."""
        if not request.provider.name:
            raise InvalidArgument.one("provider.name", "is required")
        return pb.PutProviderResponse(provider=await self._providers.put_declared(request.provider))

    async def ListProviders(
        self, request: pb.ListProvidersRequest, context: Context
    ) -> pb.ListProvidersResponse:
        """Every stored provider."""
        return pb.ListProvidersResponse(providers=await self._providers.list_providers())
