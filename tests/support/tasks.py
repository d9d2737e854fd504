"""Helpers to create and follow tasks through the public gRPC API."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from genhub.common import task_states
from genhub.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc
from tests.support.waiting import eventually

S = task_pb2
TERMINAL = set(task_states.TERMINAL)


def image_request(
    prompt: str = "a red fox", **fields: Any
) -> task_service_pb2.CreateImageTaskRequest:
    """A valid demo image request, with overrides."""
    values: dict[str, Any] = {
        "provider": "demo",
        "model": "demo-image",
        "image": S.ImageSpec(prompt=prompt, size="256x256"),
    }
    return task_service_pb2.CreateImageTaskRequest(**(values | fields))


def text_request(prompt: str = "hello", **fields: Any) -> task_service_pb2.CreateTextTaskRequest:
    """A valid demo text request, with overrides."""
    values: dict[str, Any] = {
        "provider": "demo",
        "model": "demo-text",
        "text": S.TextSpec(prompt=prompt),
    }
    return task_service_pb2.CreateTextTaskRequest(**(values | fields))


async def get(stub: task_service_pb2_grpc.TaskServiceAsyncStub, task_id: str) -> task_pb2.Task:
    """The task as the API returns it."""
    return (await stub.GetTask(task_service_pb2.GetTaskRequest(task_id=task_id))).task


async def wait_status(
    stub: task_service_pb2_grpc.TaskServiceAsyncStub,
    task_id: str,
    statuses: set[task_pb2.TaskStatus.ValueType],
    timeout: float = 20.0,
) -> task_pb2.Task:
    """Poll GetTask until the task is in one of ``statuses``."""
    return await eventually(
        lambda: get(stub, task_id),
        lambda t: t.status in statuses,
        timeout=timeout,
        what=f"task {task_id} in {sorted(S.TaskStatus.Name(s) for s in statuses)}",
    )


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """Field -> description of the BadRequest detail of an INVALID_ARGUMENT error."""
    found: dict[str, str] = {}
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    found.update({v.field: v.description for v in bad.field_violations})
    return found


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of an error."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""
