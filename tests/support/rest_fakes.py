"""An in-process gRPC server with fake TaskService, ProviderService and UserService (echoing
what they are sent), behind GenHub's own server skeleton and interceptor, and REST clients on it:
for REST tests that need no infrastructure.

A test module imports the fixtures it uses and names them in ``__all__``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from genhub.common import logging as glog
from genhub.common.errors import NotFound
from genhub.common.server import Server
from genhub.gateway.rest.app import create_app
from genhub.gateway.rest.routes import Limits
from genhub.v1 import (
    provider_pb2,
    provider_service_pb2,
    provider_service_pb2_grpc,
    task_pb2,
    task_service_pb2,
    task_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)

Context = grpc.aio.ServicerContext[Any, Any]
S = task_pb2


class FakeTasks(task_service_pb2_grpc.TaskServiceServicer):
    """Echoes what it was sent."""

    async def GetTask(
        self, request: task_service_pb2.GetTaskRequest, context: Context
    ) -> task_service_pb2.GetTaskResponse:
        if request.task_id == "missing":
            raise NotFound("task missing not found", metadata={"task_id": "missing"})
        if request.task_id == "slow":
            await asyncio.sleep(5)  # outlasts the client's deadline
        await context.send_initial_metadata([("x-served-by", "fake")])
        seen = {
            key: value if isinstance(value, str) else base64.b64encode(value).decode()
            for key, value in context.invocation_metadata() or ()
        }
        seen["bound-request-id"] = glog.request_id.get()
        return task_service_pb2.GetTaskResponse(task=S.Task(task_id=request.task_id, labels=seen))

    async def CreateTextTask(
        self, request: task_service_pb2.CreateTextTaskRequest, context: Context
    ) -> task_service_pb2.CreateTextTaskResponse:
        return task_service_pb2.CreateTextTaskResponse(
            task=S.Task(
                task_id="new/1",
                user_id=request.user_id,
                idempotency_key=request.idempotency_key,
                status=S.TASK_STATUS_QUEUED,
            )
        )

    async def ListTasks(
        self, request: task_service_pb2.ListTasksRequest, context: Context
    ) -> task_service_pb2.ListTasksResponse:
        echo = S.Task(
            user_id=request.user_id,
            type=request.type,
            status=request.status,
            attempts=request.page_size,
        )
        return task_service_pb2.ListTasksResponse(tasks=[echo], next_page_token=request.page_token)

    async def WatchTask(
        self, request: task_service_pb2.WatchTaskRequest, context: Context
    ) -> AsyncIterator[task_service_pb2.WatchTaskResponse]:
        if request.task_id == "missing":
            raise NotFound("task missing not found")
        if request.task_id in ("forever", "idle"):
            yield task_service_pb2.WatchTaskResponse(
                task=S.Task(task_id=request.task_id, status=S.TASK_STATUS_QUEUED)
            )
            # Quiet stretches: long enough for heartbeats, or until the call is cancelled.
            await asyncio.sleep(0.3 if request.task_id == "idle" else 3600)
            yield task_service_pb2.WatchTaskResponse(
                task=S.Task(task_id=request.task_id, status=S.TASK_STATUS_SUCCEEDED)
            )
            return
        for status in (S.TASK_STATUS_QUEUED, S.TASK_STATUS_RUNNING):
            yield task_service_pb2.WatchTaskResponse(
                task=S.Task(task_id=request.task_id, status=status)
            )
        if request.task_id == "vanishes":
            raise NotFound("task vanishes was deleted")
        yield task_service_pb2.WatchTaskResponse(
            task=S.Task(task_id=request.task_id, status=S.TASK_STATUS_SUCCEEDED)
        )


class FakeProviders(provider_service_pb2_grpc.ProviderServiceServicer):
    """Echoes path and body."""

    async def UpsertModel(
        self, request: provider_service_pb2.UpsertModelRequest, context: Context
    ) -> provider_service_pb2.UpsertModelResponse:
        model = provider_pb2.Model()
        model.CopyFrom(request.model)
        model.display_name = request.provider
        return provider_service_pb2.UpsertModelResponse(model=model)

    async def UpsertProviderConfig(
        self, request: provider_service_pb2.UpsertProviderConfigRequest, context: Context
    ) -> provider_service_pb2.UpsertProviderConfigResponse:
        return provider_service_pb2.UpsertProviderConfigResponse(config=request.config)


class FakeUsers(user_service_pb2_grpc.UserServiceServicer):
    """Echoes its inputs."""

    async def FindUserByEmail(
        self, request: user_service_pb2.FindUserByEmailRequest, context: Context
    ) -> user_service_pb2.FindUserByEmailResponse:
        return user_service_pb2.FindUserByEmailResponse(
            user=user_service_pb2.User(user_id="u1", email=request.email)
        )

    async def UpdateUser(
        self, request: user_service_pb2.UpdateUserRequest, context: Context
    ) -> user_service_pb2.UpdateUserResponse:
        user = user_service_pb2.User()
        user.CopyFrom(request.user)
        user.email = ",".join(request.update_mask.paths)
        return user_service_pb2.UpdateUserResponse(user=user)


@pytest.fixture(scope="module")
async def grpc_port() -> AsyncIterator[int]:
    """A gRPC server with the fakes and GenHub's interceptor."""
    server = Server(["genhub.v1.TaskService", "genhub.v1.ProviderService", "genhub.v1.UserService"])
    # The fakes implement only what the tests call; the rest stay abstract.
    tasks = FakeTasks()  # type: ignore[abstract]
    providers = FakeProviders()  # type: ignore[abstract]
    users = FakeUsers()  # type: ignore[abstract]
    task_service_pb2_grpc.add_TaskServiceServicer_to_server(tasks, server.grpc)
    provider_service_pb2_grpc.add_ProviderServiceServicer_to_server(providers, server.grpc)
    user_service_pb2_grpc.add_UserServiceServicer_to_server(users, server.grpc)
    port = server.bind("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(0)


@contextlib.asynccontextmanager
async def asgi_client(port: int, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        app = create_app(channel, **options)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rest.test") as client:
            yield client


@pytest.fixture(scope="module")
async def http(grpc_port: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the REST app in front of the fakes (1 KiB body limit)."""
    async with asgi_client(grpc_port, limits=Limits(max_body_bytes=1024)) as client:
        yield client
