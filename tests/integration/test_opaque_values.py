"""Opaque values the API hands out and takes back are bound to the request they came from:
idempotency keys to the create request, page tokens to the method and filters of the list."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from genhub.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    task_service_pb2,
    user_service_pb2,
    user_service_pb2_grpc,
)
from tests.support.rest import client, shared_rest_stack
from tests.support.stack import Stack
from tests.support.tasks import S, error_reason, image_request, text_request, violations

__all__ = ["shared_rest_stack"]  # a fixture this module uses

IMAGE = {
    "provider": "demo",
    "model": "demo-image",
    "image": {"prompt": "a red fox", "size": "256x256"},
}
TEXT = {"provider": "demo", "model": "demo-text", "text": {"prompt": "a red fox"}}


@pytest.fixture
async def http(shared_rest_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the module's stack."""
    async with client(shared_rest_stack) as opened:
        yield opened


def _user() -> str:
    return "u-" + secrets.token_hex(4)


def _conflict(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == grpc.StatusCode.ALREADY_EXISTS.value[0]
    info = next(d for d in body["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert info["metadata"]["field"] == "idempotency_key"
    assert "idempotency_key" in body["message"]


async def test_a_repeat_with_another_prompt_is_refused_over_rest(http: httpx.AsyncClient) -> None:
    user = _user()
    headers = {"Idempotency-Key": "K"}
    first = await http.post("/api/v1/ai/image/task", json=IMAGE | {"userId": user}, headers=headers)
    assert first.status_code == 202
    again = await http.post("/api/v1/ai/image/task", json=IMAGE | {"userId": user}, headers=headers)
    assert again.status_code == 202
    assert again.json()["taskId"] == first.json()["taskId"]  # an exact repeat: the first task
    whale = IMAGE | {"userId": user, "image": {"prompt": "a blue whale", "size": "256x256"}}
    _conflict(await http.post("/api/v1/ai/image/task", json=whale, headers=headers))
    _conflict(
        await http.post("/api/v1/ai/text/task", json=TEXT | {"userId": user}, headers=headers)
    )
    for changed in (
        {"priority": "PRIORITY_CRITICAL"},
        {"labels": {"team": "b"}},
        {"image": {"prompt": "a red fox", "size": "512x512"}},
        {"image": {"prompt": "a red fox", "size": "256x256", "seed": 7}},
    ):
        body = IMAGE | {"userId": user} | changed
        _conflict(await http.post("/api/v1/ai/image/task", json=body, headers=headers))
    # Another user's key space is their own.
    other = await http.post(
        "/api/v1/ai/image/task", json=IMAGE | {"userId": _user()}, headers=headers
    )
    assert other.status_code == 202
    assert other.json()["taskId"] != first.json()["taskId"]


async def test_the_same_key_over_grpc_on_another_route_is_refused(
    shared_rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    user = _user()
    rest = await http.post(
        "/api/v1/ai/image/task", json=IMAGE | {"userId": user}, headers={"Idempotency-Key": "G"}
    )
    assert rest.status_code == 202
    tasks = shared_rest_stack.tasks
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tasks.CreateTextTask(text_request("a red fox", user_id=user, idempotency_key="G"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(caught.value) == "IDEMPOTENCY_KEY_REUSED"
    assert "idempotency_key" in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError):
        await tasks.CreateImageTask(
            image_request("a blue whale", user_id=user, idempotency_key="G")
        )
    same = await tasks.CreateImageTask(
        image_request("a red fox", user_id=user, idempotency_key="G")
    )
    assert same.task.task_id == rest.json()["taskId"]


async def _three_text_tasks(stack: Stack, user: str) -> None:
    for i in range(3):
        await stack.tasks.CreateTextTask(text_request(f"page item {i}", user_id=user))


async def test_a_list_token_works_only_with_its_own_filters_and_route(
    shared_rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    user = _user()
    await _three_text_tasks(shared_rest_stack, user)
    tasks = shared_rest_stack.tasks
    first = await tasks.ListTasks(task_service_pb2.ListTasksRequest(user_id=user, page_size=1))
    token = first.next_page_token
    assert token
    seen = [first.tasks[0].task_id]
    while token:  # the token walks its own list to the end
        page = await tasks.ListTasks(
            task_service_pb2.ListTasksRequest(user_id=user, page_size=2, page_token=token)
        )
        seen += [t.task_id for t in page.tasks]
        token = page.next_page_token
    assert len(set(seen)) == 3
    token = first.next_page_token
    misuses = [
        task_service_pb2.ListTasksRequest(user_id=_user(), page_token=token),
        task_service_pb2.ListTasksRequest(user_id=user, type=S.TASK_TYPE_IMAGE, page_token=token),
        task_service_pb2.ListTasksRequest(
            user_id=user, status=S.TASK_STATUS_SUCCEEDED, page_token=token
        ),
        task_service_pb2.ListTasksRequest(user_id=user, page_token=token[:-2] + "AA"),
        task_service_pb2.ListTasksRequest(user_id=user, page_token="not-a-token"),
    ]
    for request in misuses:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tasks.ListTasks(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in violations(caught.value)
    for other_route in (
        tasks.ListImages(task_service_pb2.ListImagesRequest(user_id=user, page_token=token)),
        tasks.SearchTasks(
            task_service_pb2.SearchTasksRequest(query="page", user_id=user, page_token=token)
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await other_route
        assert "page_token" in violations(caught.value)
    # REST: the same token, another filter, is a 400 naming page_token.
    response = await http.get(
        "/api/v1/ai/tasks", params={"userId": user, "type": "TASK_TYPE_TEXT", "pageToken": token}
    )
    assert response.status_code == 400
    fields = response.json()["details"][-1]["fieldViolations"]
    assert [f["field"] for f in fields] == ["page_token"]
    ok = await http.get("/api/v1/ai/tasks", params={"userId": user, "pageToken": token})
    assert ok.status_code == 200


async def test_a_search_token_is_bound_to_its_query(
    shared_rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    user = _user()
    await _three_text_tasks(shared_rest_stack, user)
    tasks = shared_rest_stack.tasks
    first = await tasks.SearchTasks(
        task_service_pb2.SearchTasksRequest(query="page item", user_id=user, page_size=1)
    )
    token = first.next_page_token
    assert token
    second = await tasks.SearchTasks(
        task_service_pb2.SearchTasksRequest(query="  page item ", user_id=user, page_token=token)
    )
    assert len(second.tasks) == 2  # the query is compared trimmed, as it is searched
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tasks.SearchTasks(
            task_service_pb2.SearchTasksRequest(query="page", user_id=user, page_token=token)
        )
    assert "page_token" in violations(caught.value)
    response = await http.get(
        "/api/v1/ai/tasks:search", params={"query": "item", "userId": user, "pageToken": token}
    )
    assert response.status_code == 400


async def test_an_api_key_list_token_is_bound_to_its_filters(shared_rest_stack: Stack) -> None:
    async with grpc.aio.insecure_channel(shared_rest_stack.gateway_addr) as channel:
        keys = api_key_service_pb2_grpc.ApiKeyServiceStub(channel)
        users = user_service_pb2_grpc.UserServiceStub(channel)
        email = f"keys-{secrets.token_hex(3)}@example.com"
        user = (
            await users.CreateUser(
                user_service_pb2.CreateUserRequest(user=user_service_pb2.User(email=email))
            )
        ).user
        for _ in range(2):
            await keys.CreateApiKey(
                api_key_service_pb2.CreateApiKeyRequest(
                    api_key=api_key_service_pb2.ApiKey(user_id=user.user_id)
                )
            )
        first = await keys.ListApiKeys(
            api_key_service_pb2.ListApiKeysRequest(user_id=user.user_id, page_size=1)
        )
        assert first.next_page_token
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await keys.ListApiKeys(
                api_key_service_pb2.ListApiKeysRequest(
                    user_id=user.user_id, show_revoked=True, page_token=first.next_page_token
                )
            )
        assert "page_token" in violations(caught.value)
        rest = await keys.ListApiKeys(
            api_key_service_pb2.ListApiKeysRequest(
                user_id=user.user_id, page_token=first.next_page_token
            )
        )
        assert len(rest.api_keys) == 1
        assert rest.api_keys[0].key_id != first.api_keys[0].key_id
