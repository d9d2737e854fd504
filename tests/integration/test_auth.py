"""Authentication, roles and tenancy with GENHUB_AUTH_ENABLED, over gRPC and REST."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2
from pymongo import AsyncMongoClient

from genhub.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    provider_pb2,
    provider_service_pb2,
    provider_service_pb2_grpc,
    task_service_pb2,
    task_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)
from tests.support import infra
from tests.support.auth import BOOTSTRAP_KEY, auth_stack, bearer, new_user_key
from tests.support.rest import client
from tests.support.stack import Stack
from tests.support.tasks import error_reason, text_request


@dataclass
class World:
    """An auth stack, a channel and an HTTP client on it, two users and an admin with keys."""

    stack: Stack
    channel: grpc.aio.Channel
    http: httpx.AsyncClient
    alice: tuple[str, str, str]  # user_id, key_id, key
    bob: tuple[str, str, str]
    admin: tuple[str, str, str]

    @property
    def tasks(self) -> task_service_pb2_grpc.TaskServiceAsyncStub:
        """TaskService on the gateway."""
        return task_service_pb2_grpc.TaskServiceStub(self.channel)


@pytest.fixture(scope="module")
async def world(infrastructure: None) -> AsyncIterator[World]:
    """One auth stack for the module."""
    async with (
        auth_stack() as stack,
        grpc.aio.insecure_channel(stack.gateway_addr) as channel,
        client(stack) as http,
    ):
        tag = secrets.token_hex(3)
        alice = await new_user_key(channel, f"alice-{tag}@example.com")
        bob = await new_user_key(channel, f"bob-{tag}@example.com")
        admin = await new_user_key(
            channel, f"root-{tag}@example.com", role=api_key_service_pb2.ROLE_ADMIN
        )
        yield World(stack, channel, http, alice, bob, admin)


def _code(exc: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> grpc.StatusCode:
    return exc.value.code()


async def test_no_key_or_a_bad_key_is_unauthenticated(world: World) -> None:
    request = task_service_pb2.GetTaskRequest(task_id="x")
    for metadata in [(), bearer("gh_live_abcdefgh_" + "A" * 43), (("authorization", "Basic x"),)]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await world.tasks.GetTask(request, metadata=metadata)
        assert _code(caught) == grpc.StatusCode.UNAUTHENTICATED
    response = await world.http.get("/api/v1/ai/tasks/x")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    bad = await world.http.get("/api/v1/ai/tasks/x", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


async def test_health_and_reflection_need_no_key(world: World) -> None:
    check = world.channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    answer = await check(health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_key_is_shown_once_and_stored_only_as_a_keyed_hash(world: World) -> None:
    user_id, key_id, key = world.alice
    assert key.startswith(f"gh_live_{key_id}_")
    keys = api_key_service_pb2_grpc.ApiKeyServiceStub(world.channel)
    listed = await keys.ListApiKeys(
        api_key_service_pb2.ListApiKeysRequest(user_id=user_id), metadata=bearer(BOOTSTRAP_KEY)
    )
    assert [(k.key_id, k.prefix, k.role) for k in listed.api_keys] == [
        (key_id, f"gh_live_{key_id}", api_key_service_pb2.ROLE_USER)
    ]
    assert key not in str(listed)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.MONGO_URL)
    try:
        doc = await mongo[world.stack.database]["api_keys"].find_one({"_id": key_id})
    finally:
        await mongo.close()
    assert doc is not None
    assert key not in str(doc)
    assert len(doc["key_hash"]) == 64  # hex HMAC-SHA256


async def test_user_id_comes_from_the_key(world: World) -> None:
    alice_id, _, alice_key = world.alice
    own = (await world.tasks.CreateTextTask(text_request(), metadata=bearer(alice_key))).task
    assert own.user_id == alice_id
    same = text_request(user_id=alice_id)
    assert (await world.tasks.CreateTextTask(same, metadata=bearer(alice_key))).task.user_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.tasks.CreateTextTask(
            text_request(user_id="mallory"), metadata=bearer(alice_key)
        )
    assert _code(caught) == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(caught.value) == "USER_MISMATCH"
    rest = await world.http.post(
        "/api/v1/ai/text/task",
        json={"provider": "demo", "model": "demo-text", "text": {"prompt": "hi"}, "userId": "x"},
        headers={"Authorization": f"Bearer {alice_key}"},
    )
    assert rest.status_code == 403
    # An admin may act for any user.
    _, _, admin_key = world.admin
    made = await world.tasks.CreateTextTask(
        text_request(user_id=alice_id), metadata=bearer(admin_key)
    )
    assert made.task.user_id == alice_id


async def test_another_tenants_task_is_not_found_exactly_like_a_missing_one(world: World) -> None:
    _, _, alice_key = world.alice
    bob_id, _, bob_key = world.bob
    task = (
        await world.tasks.CreateTextTask(text_request("alice's secret"), metadata=bearer(alice_key))
    ).task
    as_bob = bearer(bob_key)
    tasks = world.tasks
    calls: list[Callable[[str], Awaitable[Any]]] = [
        lambda tid: tasks.GetTask(task_service_pb2.GetTaskRequest(task_id=tid), metadata=as_bob),
        lambda tid: tasks.CancelTask(
            task_service_pb2.CancelTaskRequest(task_id=tid), metadata=as_bob
        ),
        lambda tid: tasks.RetryTask(
            task_service_pb2.RetryTaskRequest(task_id=tid), metadata=as_bob
        ),
        lambda tid: tasks.DeleteTask(
            task_service_pb2.DeleteTaskRequest(task_id=tid), metadata=as_bob
        ),
        lambda tid: tasks.WatchTask(
            task_service_pb2.WatchTaskRequest(task_id=tid), metadata=as_bob
        ).read(),
    ]
    for call in calls:
        errors: list[tuple[grpc.StatusCode, str]] = []
        for task_id in (task.task_id, "01zzzzzzzzzzzzzzzzzzzzzzzz"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(task_id)
            errors.append((caught.value.code(), caught.value.details() or ""))
        assert errors[0][0] == errors[1][0] == grpc.StatusCode.NOT_FOUND
        assert errors[0][1] == errors[1][1].replace("01zzzzzzzzzzzzzzzzzzzzzzzz", task.task_id)
    rest = await world.http.get(
        f"/api/v1/ai/task/result/{task.task_id}", headers={"Authorization": f"Bearer {bob_key}"}
    )
    assert rest.status_code == 404
    # Still there for its owner: nothing was cancelled or deleted.
    mine = await tasks.GetTask(
        task_service_pb2.GetTaskRequest(task_id=task.task_id), metadata=bearer(alice_key)
    )
    assert mine.task.status != 0
    # Lists and searches show bob only his own; asking for alice's is refused.
    listed = await tasks.ListTasks(task_service_pb2.ListTasksRequest(), metadata=as_bob)
    assert all(t.user_id == bob_id for t in listed.tasks)
    found = await tasks.SearchTasks(
        task_service_pb2.SearchTasksRequest(query="alice's secret"), metadata=as_bob
    )
    assert list(found.tasks) == []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tasks.ListTasks(
            task_service_pb2.ListTasksRequest(user_id=world.alice[0]), metadata=as_bob
        )
    assert _code(caught) == grpc.StatusCode.PERMISSION_DENIED
    # An admin sees everyone's.
    _, _, admin_key = world.admin
    everyone = await tasks.SearchTasks(
        task_service_pb2.SearchTasksRequest(query="alice's secret"), metadata=bearer(admin_key)
    )
    assert [t.task_id for t in everyone.tasks] == [task.task_id]


async def test_admin_only_services_refuse_users(world: World) -> None:
    _, _, alice_key = world.alice
    as_alice = bearer(alice_key)
    providers = provider_service_pb2_grpc.ProviderServiceStub(world.channel)
    users = user_service_pb2_grpc.UserServiceStub(world.channel)
    keys = api_key_service_pb2_grpc.ApiKeyServiceStub(world.channel)
    listed = await providers.ListProviders(
        provider_service_pb2.ListProvidersRequest(), metadata=as_alice
    )
    assert [p.name for p in listed.providers] == ["demo"]  # the catalogue is for everyone
    refused: list[Awaitable[Any]] = [
        providers.UpsertProviderConfig(
            provider_service_pb2.UpsertProviderConfigRequest(
                config=provider_pb2.ProviderConfig(provider="demo")
            ),
            metadata=as_alice,
        ),
        providers.ListProviderConfigs(
            provider_service_pb2.ListProviderConfigsRequest(), metadata=as_alice
        ),
        providers.UpsertModel(provider_service_pb2.UpsertModelRequest(), metadata=as_alice),
        users.GetUser(user_service_pb2.GetUserRequest(user_id=world.alice[0]), metadata=as_alice),
        keys.ListApiKeys(api_key_service_pb2.ListApiKeysRequest(), metadata=as_alice),
        keys.CreateApiKey(api_key_service_pb2.CreateApiKeyRequest(), metadata=as_alice),
    ]
    for call in refused:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert _code(caught) == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(caught.value) == "ADMIN_REQUIRED"
    rest = await world.http.get(
        "/api/v1/providers/demo/config", headers={"Authorization": f"Bearer {alice_key}"}
    )
    assert rest.status_code == 403
    _, _, admin_key = world.admin
    ok = await world.http.get("/api/v1/apiKeys", headers={"Authorization": f"Bearer {admin_key}"})
    assert ok.status_code == 200


async def test_a_revoked_key_stops_working_at_once(world: World) -> None:
    _, key_id, key = await new_user_key(world.channel, f"eve-{secrets.token_hex(3)}@example.com")
    assert await world.tasks.ListTasks(task_service_pb2.ListTasksRequest(), metadata=bearer(key))
    keys = api_key_service_pb2_grpc.ApiKeyServiceStub(world.channel)
    revoked = await keys.DeleteApiKey(
        api_key_service_pb2.DeleteApiKeyRequest(key_id=key_id), metadata=bearer(BOOTSTRAP_KEY)
    )
    assert revoked.api_key.HasField("revoke_time")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.tasks.ListTasks(task_service_pb2.ListTasksRequest(), metadata=bearer(key))
    assert _code(caught) == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await keys.DeleteApiKey(
            api_key_service_pb2.DeleteApiKeyRequest(key_id=key_id), metadata=bearer(BOOTSTRAP_KEY)
        )
    assert _code(again) == grpc.StatusCode.NOT_FOUND
    listed = await keys.ListApiKeys(
        api_key_service_pb2.ListApiKeysRequest(show_revoked=True), metadata=bearer(BOOTSTRAP_KEY)
    )
    assert key_id in {k.key_id for k in listed.api_keys}
    live = await keys.ListApiKeys(
        api_key_service_pb2.ListApiKeysRequest(), metadata=bearer(BOOTSTRAP_KEY)
    )
    assert key_id not in {k.key_id for k in live.api_keys}


async def test_a_key_for_no_user_is_refused_naming_the_field(world: World) -> None:
    keys = api_key_service_pb2_grpc.ApiKeyServiceStub(world.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await keys.CreateApiKey(
            api_key_service_pb2.CreateApiKeyRequest(
                api_key=api_key_service_pb2.ApiKey(user_id="01nobody0000000000000000000")
            ),
            metadata=bearer(BOOTSTRAP_KEY),
        )
    assert _code(caught) == grpc.StatusCode.INVALID_ARGUMENT
    assert "api_key.user_id" in (caught.value.details() or "")


async def test_requests_over_the_per_key_rate_are_refused_with_retry_after() -> None:
    async with (
        auth_stack(rate_limit_per_minute=3) as stack,
        grpc.aio.insecure_channel(stack.gateway_addr) as channel,
        client(stack) as http,
    ):
        # The bootstrap key is limited too: one user and two keys are its three requests.
        user_id, _, key = await new_user_key(channel, "rate@example.com")
        keys = api_key_service_pb2_grpc.ApiKeyServiceStub(channel)
        other = await keys.CreateApiKey(
            api_key_service_pb2.CreateApiKeyRequest(
                api_key=api_key_service_pb2.ApiKey(user_id=user_id)
            ),
            metadata=bearer(BOOTSTRAP_KEY),
        )
        tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        for _ in range(3):
            await tasks.ListTasks(task_service_pb2.ListTasksRequest(), metadata=bearer(key))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tasks.ListTasks(task_service_pb2.ListTasksRequest(), metadata=bearer(key))
        assert _code(caught) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(caught.value) == "RATE_LIMITED"
        response = await http.get("/api/v1/ai/tasks", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 20  # one request per 20 s
        types = [d["@type"] for d in response.json()["details"]]
        assert "type.googleapis.com/google.rpc.RetryInfo" in types
        # Another key (even of the same user) has its own budget.
        assert await tasks.ListTasks(
            task_service_pb2.ListTasksRequest(), metadata=bearer(other.key)
        )
