"""Stored media in the public TaskService: every task an RPC answers with (GetTask, ListTasks,
SearchTasks, ListImages, GetImage, SearchImages, WatchTask, a create that waited) gets fresh
time-limited URLs for its stored files, and DeleteTask / DeleteImage delete the task's files
once task-store has deleted the task. Lists and searches answer in their ``view``: the basic
view (their default) leaves out each file's ``media`` record, keeping its URL.

It is a server interceptor over ``genhub.v1.TaskService`` rather than code in each RPC: every
answer that carries a ``genhub.v1.Task`` is linked, including RPCs added later, and REST gets
the same answers because it proxies to gRPC. Task documents hold references only; URLs are
made here on every read and never stored (docs/media.md, "Task results and URLs").
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from genhub.media import MediaError, MediaStore, link_result
from genhub.v1 import task_pb2, task_service_pb2

log = logging.getLogger(__name__)
SERVICE_PREFIX = "/genhub.v1.TaskService/"
# RPCs after which the task's files go; the request names the task in ``task_id``.
DELETES = frozenset({"DeleteTask", "DeleteImage"})


@functools.cache
def _task_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields of a response type that hold tasks (``task``, ``tasks``)."""
    return tuple(f for f in descriptor.fields if f.message_type is task_pb2.Task.DESCRIPTOR)


class MediaResults:
    """Links and deletes the stored files of tasks through one media store."""

    def __init__(self, store: MediaStore) -> None:
        self._store = store

    async def link(self, response: Message, *, basic: bool = False) -> None:
        """Fill the URLs of every task in ``response`` (in place); with ``basic``
        (``TASK_VIEW_BASIC``) then leave out each file's ``media`` record, keeping its URL."""
        for field in _task_fields(response.DESCRIPTOR):
            value = getattr(response, field.name)
            tasks = value if field.is_repeated else [value] if response.HasField(field.name) else []
            for task in tasks:
                await self.link_task(task)
                if basic:
                    _basic_view(task)

    async def link_task(self, task: task_pb2.Task) -> None:
        """Fresh URLs for a succeeded task's stored files. An expired task's files are gone:
        its references stay as a record, without URLs. A signing failure leaves the URLs empty
        rather than failing the read."""
        if task.status != task_pb2.TASK_STATUS_SUCCEEDED:
            return
        try:
            await link_result(task.result, self._store)
        except MediaError as exc:
            log.warning("media URLs not made: %s", exc.message, extra={"task_id": task.task_id})

    async def forget(self, task_id: str) -> None:
        """Delete a deleted task's files. The task is gone already, so a failure (object store
        down) is logged, not raised: the orphan sweep (``genhub-media sweep``) removes them."""
        try:
            count = await self._store.delete_owner(task_id)
        except (MediaError, ValueError) as exc:
            log.warning(
                "files of a deleted task kept for the orphan sweep: %s",
                getattr(exc, "message", str(exc)),
                extra={"task_id": task_id},
            )
            return
        if count:
            log.info("deleted the task's files", extra={"task_id": task_id, "count": count})


def _basic_view(task: task_pb2.Task) -> None:
    for image in task.result.images:
        image.ClearField("media")
    if task.result.HasField("video"):
        task.result.video.ClearField("media")


def _wants_basic(request: Any) -> bool:
    """Whether ``request`` (a list or search, the RPCs with a ``view`` field) asks for the
    basic view, their default (AIP-157)."""
    if "view" not in request.DESCRIPTOR.fields_by_name:
        return False
    return bool(request.view != task_service_pb2.TASK_VIEW_FULL)


class MediaInterceptor(grpc.aio.ServerInterceptor):
    """Applies :class:`MediaResults` to every TaskService RPC (installed by the gateway when a
    media store is configured)."""

    def __init__(self, results: MediaResults) -> None:
        self._results = results

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        name = method.removeprefix(SERVICE_PREFIX)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(name, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, name: str, behavior: Any) -> Any:
        results = self._results

        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            response = await behavior(request, context)
            if name in DELETES:
                await results.forget(request.task_id)
            else:
                await results.link(response, basic=_wants_basic(request))
            return response

        return wrapped

    def _stream(self, behavior: Any) -> Any:
        results = self._results

        async def wrapped(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            async for response in behavior(request, context):
                await results.link(response)
                yield response

        return wrapped
