"""The public TaskService: validate, store, publish; read, list, cancel, delete, watch."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from genhub.common import logging as glog
from genhub.common.errors import FailedPrecondition, InvalidArgument, NotFound
from genhub.common.provider_client import seal_credentials
from genhub.common.secrets import SecretBox
from genhub.common.store_client import TaskStoreClient
from genhub.common.task_states import TERMINAL
from genhub.egress import EgressPolicy, Resolver
from genhub.gateway import idempotency, tenancy, validation
from genhub.gateway.catalogue import Catalogue
from genhub.gateway.fallbacks import check_fallbacks
from genhub.gateway.page_tokens import PageTokens
from genhub.gateway.watcher import TaskWatcher
from genhub.store.v1 import task_store_pb2
from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
MAX_PAGE_SIZE = 500
MAX_QUERY_CHARS = 200
S = task_pb2
# The create RPCs differ only in their spec field: its task type and its validation rules.
_KINDS: dict[str, tuple[task_pb2.TaskType.ValueType, Callable[..., None]]] = {
    "image": (S.TASK_TYPE_IMAGE, validation.check_image),
    "video": (S.TASK_TYPE_VIDEO, validation.check_video),
    "text": (S.TASK_TYPE_TEXT, validation.check_text),
}


class TaskServicer(task_service_pb2_grpc.TaskServiceServicer):
    """Implements genhub.v1.TaskService over task-store and Redis events."""

    def __init__(
        self,
        store: TaskStoreClient,
        catalogue: Catalogue,
        watcher: TaskWatcher,
        box: SecretBox | None,
        egress: EgressPolicy | None = None,
        resolver: Resolver | None = None,
        *,
        pages: PageTokens | None = None,
    ) -> None:
        self._egress = egress or EgressPolicy()
        self._resolver = resolver
        self._pages = pages or PageTokens.from_secret("")
        self._store = store
        self._catalogue = catalogue
        self._watcher = watcher
        self._box = box

    async def CreateImageTask(
        self, request: task_service_pb2.CreateImageTaskRequest, context: Context
    ) -> task_service_pb2.CreateImageTaskResponse:
        """Validate, store and queue an image task."""
        task = await self._create_kind(request, "image")
        return task_service_pb2.CreateImageTaskResponse(task=task)

    async def CreateVideoTask(
        self, request: task_service_pb2.CreateVideoTaskRequest, context: Context
    ) -> task_service_pb2.CreateVideoTaskResponse:
        """Validate, store and queue a video task."""
        task = await self._create_kind(request, "video")
        return task_service_pb2.CreateVideoTaskResponse(task=task)

    async def CreateTextTask(
        self, request: task_service_pb2.CreateTextTaskRequest, context: Context
    ) -> task_service_pb2.CreateTextTaskResponse:
        """Validate, store and queue a text task."""
        task = await self._create_kind(request, "text")
        return task_service_pb2.CreateTextTaskResponse(task=task)

    async def _create_kind(self, request: Any, kind: str) -> task_pb2.Task:
        task_type, check = _KINDS[kind]
        v = validation.Violations()
        if not request.HasField(kind):
            v.add(kind, "is required")
        model = await self._model(request, task_type, v)
        check(v, getattr(request, kind), model)
        check_fallbacks(v, await self._catalogue.providers(), request, kind, task_type, check)
        if request.HasField("webhook"):
            validation.check_webhook(v, request.webhook)
        await validation.check_remote_urls(
            v, validation.remote_urls(request, kind), self._egress, self._resolver
        )
        task = self._new_task(request, task_type, v)
        getattr(task, kind).CopyFrom(getattr(request, kind))
        return await self._create(task, request)

    async def _model(
        self, request: Any, task_type: task_pb2.TaskType.ValueType, v: validation.Violations
    ) -> Any:
        try:
            return validation.resolve_model(
                await self._catalogue.providers(), request.provider, request.model, task_type
            )
        except InvalidArgument as exc:
            # Report the catalogue problem together with every other bad field.
            v.items[:0] = exc.violations
            v.raise_if_any()
            raise

    def _new_task(
        self, request: Any, task_type: task_pb2.TaskType.ValueType, v: validation.Violations
    ) -> task_pb2.Task:
        validation.check_common(
            v,
            priority=request.priority,
            user_id=request.user_id,
            idempotency_key=request.idempotency_key,
            labels=request.labels,
            wait=request.wait,
        )
        v.raise_if_any()
        return task_pb2.Task(
            user_id=tenancy.owner_for_create(request.user_id),
            idempotency_key=request.idempotency_key,
            type=task_type,
            provider=request.provider,
            model=request.model,
            priority=request.priority or S.PRIORITY_DEFAULT,
            labels=request.labels,
            webhook=request.webhook if request.HasField("webhook") else None,
            fallbacks=request.fallbacks,
        )

    async def _create(self, task: task_pb2.Task, request: Any) -> task_pb2.Task:
        sealed = self._seal_credentials(request.credentials)
        task.request_credentials = bool(sealed)
        # One call: task-store stores the task as queued and publishes its message (its
        # outbox makes the two one write), so nothing here can leave a task unpublished.
        stored, created = await self._store.create(task, sealed)
        glog.task_id.set(stored.task_id)
        if not created:
            idempotency.check_same_request(task, stored)
        wait = request.wait.seconds + request.wait.nanos / 1e9
        if wait > 0 and stored.status not in TERMINAL:
            stored = await self._watcher.wait_finished(stored.task_id, wait)
        return stored

    def _seal_credentials(self, credentials: task_pb2.ProviderCredentials) -> str:
        if not (credentials.api_key or credentials.access_key_id or credentials.secret_access_key):
            return ""
        if self._box is None:
            raise FailedPrecondition(
                "per-request credentials need GENHUB_SECRETS_KEYS on the gateway and workers",
                reason="SECRETS_KEY_MISSING",
            )
        return seal_credentials(self._box, credentials)

    async def GetTask(
        self, request: task_service_pb2.GetTaskRequest, context: Context
    ) -> task_service_pb2.GetTaskResponse:
        """Return a task."""
        _require_task_id(request.task_id)
        task = tenancy.check_owner(await self._store.get(request.task_id))
        return task_service_pb2.GetTaskResponse(task=task)

    async def ListTasks(
        self, request: task_service_pb2.ListTasksRequest, context: Context
    ) -> task_service_pb2.ListTasksResponse:
        """Return a page of tasks, newest first."""
        _check_page(request.page_size, request.type, request.status, request.view).raise_if_any()
        user_id = tenancy.list_filter(request.user_id)
        pages = self._pages.bind(
            "ListTasks", user_id=user_id, type=request.type, status=request.status
        )
        page = await self._store.list_tasks(
            task_store_pb2.ListTasksRequest(
                user_id=user_id,
                type=request.type,
                statuses=[request.status] if request.status else [],
                page_size=min(request.page_size or 50, MAX_PAGE_SIZE),
                page_token=pages.unwrap(request.page_token),
            )
        )
        return task_service_pb2.ListTasksResponse(
            tasks=page.tasks, next_page_token=pages.wrap(page.next_page_token)
        )

    async def DeleteTask(
        self, request: task_service_pb2.DeleteTaskRequest, context: Context
    ) -> task_service_pb2.DeleteTaskResponse:
        """Delete a task; its worker skips it."""
        _require_task_id(request.task_id)
        tenancy.check_owner(await self._store.get(request.task_id))
        await self._store.delete(request.task_id)
        return task_service_pb2.DeleteTaskResponse()

    async def SearchTasks(
        self, request: task_service_pb2.SearchTasksRequest, context: Context
    ) -> task_service_pb2.SearchTasksResponse:
        """Return a page of the tasks whose prompt contains the query, newest first."""
        page = await self._search(request, request.type, "SearchTasks")
        return task_service_pb2.SearchTasksResponse(
            tasks=page.tasks, next_page_token=page.next_page_token
        )

    async def ListImages(
        self, request: task_service_pb2.ListImagesRequest, context: Context
    ) -> task_service_pb2.ListImagesResponse:
        """Return a page of image tasks, newest first."""
        v = _check_page(request.page_size, S.TASK_TYPE_IMAGE, request.status, request.view)
        v.raise_if_any()
        user_id = tenancy.list_filter(request.user_id)
        pages = self._pages.bind("ListImages", user_id=user_id, status=request.status)
        page = await self._store.list_tasks(
            task_store_pb2.ListTasksRequest(
                user_id=user_id,
                type=S.TASK_TYPE_IMAGE,
                statuses=[request.status] if request.status else [],
                page_size=min(request.page_size or 50, MAX_PAGE_SIZE),
                page_token=pages.unwrap(request.page_token),
            )
        )
        return task_service_pb2.ListImagesResponse(
            tasks=page.tasks, next_page_token=pages.wrap(page.next_page_token)
        )

    async def GetImage(
        self, request: task_service_pb2.GetImageRequest, context: Context
    ) -> task_service_pb2.GetImageResponse:
        """Return an image task; NOT_FOUND for a task of another type."""
        return task_service_pb2.GetImageResponse(task=await self._image(request.task_id))

    async def DeleteImage(
        self, request: task_service_pb2.DeleteImageRequest, context: Context
    ) -> task_service_pb2.DeleteImageResponse:
        """Delete an image task; NOT_FOUND (and nothing deleted) for a task of another type."""
        await self._image(request.task_id)  # a task's type never changes, so check then delete
        await self._store.delete(request.task_id)
        return task_service_pb2.DeleteImageResponse()

    async def SearchImages(
        self, request: task_service_pb2.SearchImagesRequest, context: Context
    ) -> task_service_pb2.SearchImagesResponse:
        """Return a page of the image tasks whose prompt contains the query, newest first."""
        page = await self._search(request, S.TASK_TYPE_IMAGE, "SearchImages")
        return task_service_pb2.SearchImagesResponse(
            tasks=page.tasks, next_page_token=page.next_page_token
        )

    async def _search(
        self, request: Any, task_type: task_pb2.TaskType.ValueType, route: str
    ) -> task_store_pb2.SearchTasksResponse:
        v = _check_page(request.page_size, task_type, request.status, request.view)
        query = request.query.strip()
        if not query:
            v.add("query", "is required and must not be blank")
        elif len(query) > MAX_QUERY_CHARS:
            v.add("query", f"must be at most {MAX_QUERY_CHARS} characters (got {len(query)})")
        v.raise_if_any()
        user_id = tenancy.list_filter(request.user_id)
        pages = self._pages.bind(
            route, user_id=user_id, type=task_type, status=request.status, query=query
        )
        page = await self._store.search(
            task_store_pb2.SearchTasksRequest(
                query=query,
                user_id=user_id,
                type=task_type,
                status=request.status,
                page_size=min(request.page_size or 50, MAX_PAGE_SIZE),
                page_token=pages.unwrap(request.page_token),
            )
        )
        page.next_page_token = pages.wrap(page.next_page_token)
        return page

    async def _image(self, task_id: str) -> task_pb2.Task:
        _require_task_id(task_id)
        task = tenancy.check_owner(await self._store.get(task_id))
        if task.type != S.TASK_TYPE_IMAGE:
            raise NotFound(
                f"image {task_id} not found: task {task_id} is not an image task",
                metadata={"task_id": task_id},
            )
        return task

    async def CancelTask(
        self, request: task_service_pb2.CancelTaskRequest, context: Context
    ) -> task_service_pb2.CancelTaskResponse:
        """Cancel an unfinished task; FAILED_PRECONDITION once it has finished."""
        _require_task_id(request.task_id)
        # Ownership first: another tenant's task is NOT_FOUND, never cancelled.
        tenancy.check_owner(await self._store.get(request.task_id))
        return task_service_pb2.CancelTaskResponse(task=await self._store.cancel(request.task_id))

    async def RetryTask(
        self, request: task_service_pb2.RetryTaskRequest, context: Context
    ) -> task_service_pb2.RetryTaskResponse:
        """Run a failed task again with a fresh attempt budget; FAILED_PRECONDITION unless it
        failed, or when it ran with per-request credentials (never stored, so gone)."""
        _require_task_id(request.task_id)
        task = tenancy.check_owner(await self._store.get(request.task_id))
        if task.request_credentials and task.status == S.TASK_STATUS_FAILED:
            raise FailedPrecondition(
                f"task {task.task_id} ran with credentials given in its create request; they "
                "are never stored, so it cannot run again: create it again with them",
                reason="CREDENTIALS_NOT_STORED",
                metadata={"task_id": task.task_id},
            )
        return task_service_pb2.RetryTaskResponse(task=await self._store.retry(request.task_id))

    async def WatchTask(
        self, request: task_service_pb2.WatchTaskRequest, context: Context
    ) -> AsyncIterator[task_service_pb2.WatchTaskResponse]:
        """Stream the task on every status change until it is terminal."""
        _require_task_id(request.task_id)
        tenancy.check_owner(await self._store.get(request.task_id))
        async for task in self._watcher.changes(request.task_id):
            yield task_service_pb2.WatchTaskResponse(task=task)


def _check_page(
    page_size: int,
    task_type: task_pb2.TaskType.ValueType,
    status: task_pb2.TaskStatus.ValueType,
    view: task_service_pb2.TaskView.ValueType,
) -> validation.Violations:
    """The violations of a list or search request's paging, filters and view (not raised
    yet). The view itself is applied by ``media_results`` (it concerns stored files only)."""
    v = validation.Violations()
    if page_size < 0:
        v.add("page_size", "must not be negative")
    if task_type not in task_pb2.TaskType.values():
        v.add("type", "is not a task type")
    if status not in task_pb2.TaskStatus.values():
        v.add("status", "is not a task status")
    if view not in task_service_pb2.TaskView.values():
        v.add("view", "is not a task view")
    return v


def _require_task_id(task_id: str) -> None:
    validation.require_id("task_id", task_id, " (ids are 26)")
    glog.task_id.set(task_id)
