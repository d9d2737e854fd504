"""Every HTTP rule of the descriptors (additional bindings included) reaches its RPC over REST
and answers what the same request answers over gRPC: the same task, the same error code."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, json_format
from google.protobuf.message import Message

from genhub.gateway.rest.bindings import PUBLIC_SERVICES, Binding, load_bindings
from genhub.gateway.rest.errors import http_status
from genhub.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    provider_pb2,
    provider_service_pb2,
    provider_service_pb2_grpc,
    task_pb2,
    task_service_pb2,
    user_service_pb2_grpc,
)
from genhub.v1 import user_service_pb2 as users
from tests.support.rest import client, encode_http, ndjson, send, shared_rest_stack
from tests.support.stack import Stack
from tests.support.tasks import S, image_request, text_request, wait_status

__all__ = ["shared_rest_stack"]  # a fixture this module uses

BINDINGS = load_bindings()
WAIT = duration_pb2.Duration(seconds=20)
READER = "table-reader"
READER_EMAIL = "table-reader@example.com"
CREATED_EMAIL = "table-creator@example.com"


@dataclass
class World:
    """The shared stack, a client on it, a finished task and a user to read."""

    stack: Stack
    http: httpx.AsyncClient
    finished: task_pb2.Task
    user_service: user_service_pb2_grpc.UserServiceAsyncStub
    reader: users.User
    keys: api_key_service_pb2_grpc.ApiKeyServiceAsyncStub
    reader_key: api_key_service_pb2.ApiKey


@pytest.fixture(scope="module")
async def world(shared_rest_stack: Stack) -> AsyncIterator[World]:
    """A succeeded text task owned by READER, and a user, on the module's stack."""
    stack = shared_rest_stack
    task = (await stack.tasks.CreateTextTask(text_request("to read", user_id=READER))).task
    finished = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    async with client(stack) as http, grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        user_stub = user_service_pb2_grpc.UserServiceStub(channel)
        reader = users.User(email=READER_EMAIL, display_name="Reader")
        reader = (await user_stub.CreateUser(users.CreateUserRequest(user=reader))).user
        keys = api_key_service_pb2_grpc.ApiKeyServiceStub(channel)
        key = (await keys.CreateApiKey(_key_request(reader.user_id))).api_key
        yield World(stack, http, finished, user_stub, reader, keys, key)


def _key_request(user_id: str) -> api_key_service_pb2.CreateApiKeyRequest:
    return api_key_service_pb2.CreateApiKeyRequest(
        api_key=api_key_service_pb2.ApiKey(user_id=user_id, display_name="table")
    )


async def _fresh_key(world: World, binding: Binding) -> Message:
    # Revoking is not repeatable: each side revokes a key of its own.
    key = (await world.keys.CreateApiKey(_key_request(world.reader.user_id))).api_key
    return api_key_service_pb2.DeleteApiKeyRequest(key_id=key.key_id)


Sample = Callable[[World, Binding], Awaitable[Message]]


def _const(make: Callable[[World, Binding], Message]) -> Sample:
    async def sample(world: World, binding: Binding) -> Message:
        return make(world, binding)

    return sample


async def _fresh_task(world: World, binding: Binding) -> Message:
    # Deleting is not repeatable: each side deletes a task of its own.
    task = (await world.stack.tasks.CreateTextTask(text_request("to delete"))).task
    return task_service_pb2.DeleteTaskRequest(task_id=task.task_id)


_READER_IMAGES: dict[str, task_pb2.Task] = {}


async def _reader_image(world: World) -> task_pb2.Task:
    """A succeeded image task owned by READER, made once per stack."""
    key = world.stack.database
    if key not in _READER_IMAGES:
        request = image_request("library picture", user_id=READER)
        task = (await world.stack.tasks.CreateImageTask(request)).task
        _READER_IMAGES[key] = await wait_status(
            world.stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED}
        )
    return _READER_IMAGES[key]


async def _list_images(world: World, binding: Binding) -> Message:
    await _reader_image(world)
    return task_service_pb2.ListImagesRequest(
        user_id=READER, status=S.TASK_STATUS_SUCCEEDED, page_size=10
    )


async def _get_image(world: World, binding: Binding) -> Message:
    return task_service_pb2.GetImageRequest(task_id=(await _reader_image(world)).task_id)


async def _search_images(world: World, binding: Binding) -> Message:
    await _reader_image(world)
    return task_service_pb2.SearchImagesRequest(query="LIBRARY", user_id=READER, page_size=10)


async def _fresh_image(world: World, binding: Binding) -> Message:
    # Deleting is not repeatable: each side deletes an image task of its own.
    task = (await world.stack.tasks.CreateImageTask(image_request("to delete"))).task
    return task_service_pb2.DeleteImageRequest(task_id=task.task_id)


async def _new_user(world: World, binding: Binding) -> Message:
    # Each side registers the same email: the user the other side made is deleted first.
    try:
        found = await world.user_service.FindUserByEmail(
            users.FindUserByEmailRequest(email=CREATED_EMAIL)
        )
        await world.user_service.DeleteUser(users.DeleteUserRequest(user_id=found.user.user_id))
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
    return users.CreateUserRequest(user=users.User(email=CREATED_EMAIL, display_name="New"))


def _providers(world: World) -> provider_service_pb2_grpc.ProviderServiceAsyncStub:
    return provider_service_pb2_grpc.ProviderServiceStub(
        grpc.aio.insecure_channel(world.stack.gateway_addr)
    )


EXTRA_MODEL = provider_pb2.Model(model="extra", type=S.TASK_TYPE_TEXT, max_tokens=64)
SAMPLE_CONFIG = provider_pb2.ProviderConfig(
    provider="demo", api_base="https://demo.example", max_retries=2
)


async def _override_to_delete(world: World, binding: Binding) -> Message:
    # Deleting is not repeatable: each side deletes an override it has just made.
    await _providers(world).UpsertModel(
        provider_service_pb2.UpsertModelRequest(provider="demo", model=EXTRA_MODEL)
    )
    return provider_service_pb2.DeleteModelRequest(provider="demo", model="extra")


async def _config_to_delete(world: World, binding: Binding) -> Message:
    await _providers(world).UpsertProviderConfig(
        provider_service_pb2.UpsertProviderConfigRequest(config=SAMPLE_CONFIG)
    )
    return provider_service_pb2.DeleteProviderConfigRequest(provider="demo")


async def _fresh_user(world: World, binding: Binding) -> Message:
    # Deleting is not repeatable: each side deletes a user of its own.
    email = f"to-delete-{secrets.token_hex(4)}@example.com"
    request = users.CreateUserRequest(user=users.User(email=email))
    user = (await world.user_service.CreateUser(request)).user
    return users.DeleteUserRequest(user_id=user.user_id)


def _video(world: World, binding: Binding) -> Message:
    return task_service_pb2.CreateVideoTaskRequest(
        provider="demo",
        model="demo-video",
        video=S.VideoSpec(prompt="waves", aspect_ratio="16:9", duration_seconds=2),
        user_id="table-creator",
        idempotency_key=binding.operation_id,
        wait=WAIT,
    )


# One request per RPC. Creates carry an idempotency key and a wait, so the REST call returns the
# very task (finished) that the gRPC call created.
SAMPLES: dict[str, Sample] = {
    "genhub.v1.TaskService.CreateImageTask": _const(
        lambda w, b: image_request(
            "table", user_id="table-creator", idempotency_key=b.operation_id, wait=WAIT
        )
    ),
    "genhub.v1.TaskService.CreateVideoTask": _const(_video),
    "genhub.v1.TaskService.CreateTextTask": _const(
        lambda w, b: text_request(
            "table", user_id="table-creator", idempotency_key=b.operation_id, wait=WAIT
        )
    ),
    "genhub.v1.TaskService.GetTask": _const(
        lambda w, b: task_service_pb2.GetTaskRequest(task_id=w.finished.task_id)
    ),
    "genhub.v1.TaskService.ListTasks": _const(
        lambda w, b: task_service_pb2.ListTasksRequest(
            user_id=READER, type=S.TASK_TYPE_TEXT, status=S.TASK_STATUS_SUCCEEDED, page_size=10
        )
    ),
    "genhub.v1.TaskService.DeleteTask": _fresh_task,
    "genhub.v1.TaskService.CancelTask": _const(
        lambda w, b: task_service_pb2.CancelTaskRequest(task_id=w.finished.task_id)
    ),
    "genhub.v1.TaskService.RetryTask": _const(
        lambda w, b: task_service_pb2.RetryTaskRequest(task_id=w.finished.task_id)
    ),
    "genhub.v1.TaskService.WatchTask": _const(
        lambda w, b: task_service_pb2.WatchTaskRequest(task_id=w.finished.task_id)
    ),
    "genhub.v1.TaskService.SearchTasks": _const(
        lambda w, b: task_service_pb2.SearchTasksRequest(
            query="TO READ",
            user_id=READER,
            type=S.TASK_TYPE_TEXT,
            status=S.TASK_STATUS_SUCCEEDED,
            page_size=10,
        )
    ),
    "genhub.v1.TaskService.ListImages": _list_images,
    "genhub.v1.TaskService.GetImage": _get_image,
    "genhub.v1.TaskService.DeleteImage": _fresh_image,
    "genhub.v1.TaskService.SearchImages": _search_images,
    "genhub.v1.ProviderService.ListProviders": _const(
        lambda w, b: provider_service_pb2.ListProvidersRequest()
    ),
    "genhub.v1.ProviderService.GetProvider": _const(
        lambda w, b: provider_service_pb2.GetProviderRequest(name="demo")
    ),
    "genhub.v1.ProviderService.UpsertModel": _const(
        lambda w, b: provider_service_pb2.UpsertModelRequest(provider="demo", model=EXTRA_MODEL)
    ),
    "genhub.v1.ProviderService.DeleteModel": _override_to_delete,
    "genhub.v1.ProviderService.UpsertProviderConfig": _const(
        lambda w, b: provider_service_pb2.UpsertProviderConfigRequest(config=SAMPLE_CONFIG)
    ),
    "genhub.v1.ProviderService.GetProviderConfig": _const(
        lambda w, b: provider_service_pb2.GetProviderConfigRequest(provider="demo")
    ),
    "genhub.v1.ProviderService.ListProviderConfigs": _const(
        lambda w, b: provider_service_pb2.ListProviderConfigsRequest()
    ),
    "genhub.v1.ProviderService.DeleteProviderConfig": _config_to_delete,
    "genhub.v1.ProviderService.EnableProvider": _const(
        lambda w, b: provider_service_pb2.EnableProviderRequest(provider="demo")
    ),
    "genhub.v1.ProviderService.DisableProvider": _const(
        lambda w, b: provider_service_pb2.DisableProviderRequest(provider="demo")
    ),
    "genhub.v1.UserService.CreateUser": _new_user,
    "genhub.v1.UserService.GetUser": _const(
        lambda w, b: users.GetUserRequest(user_id=w.reader.user_id)
    ),
    "genhub.v1.UserService.FindUserByEmail": _const(
        lambda w, b: users.FindUserByEmailRequest(email=READER_EMAIL.upper())
    ),
    # The first call renames the user; the second changes nothing, so it answers the same user.
    "genhub.v1.UserService.UpdateUser": _const(
        lambda w, b: users.UpdateUserRequest(
            user=users.User(user_id=w.reader.user_id, display_name="Ada"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
    ),
    "genhub.v1.UserService.DeleteUser": _fresh_user,
    "genhub.v1.ApiKeyService.CreateApiKey": _const(lambda w, b: _key_request(w.reader.user_id)),
    "genhub.v1.ApiKeyService.GetApiKey": _const(
        lambda w, b: api_key_service_pb2.GetApiKeyRequest(key_id=w.reader_key.key_id)
    ),
    "genhub.v1.ApiKeyService.ListApiKeys": _const(
        lambda w, b: api_key_service_pb2.ListApiKeysRequest(
            user_id=w.reader.user_id, show_revoked=True, page_size=100
        )
    ),
    "genhub.v1.ApiKeyService.DeleteApiKey": _fresh_key,
}
# Fields the server assigns afresh on every call of an RPC that makes a new resource each time
# (each side makes its own); they are left out of the comparison.
SERVER_ASSIGNED: dict[str, tuple[str, ...]] = {
    "genhub.v1.UserService.CreateUser": ("user_id", "create_time", "update_time"),
    # Each upsert stores the configuration anew.
    "genhub.v1.ProviderService.UpsertProviderConfig": ("update_time",),
    # A new key, id and secret each time: only the shape and status are compared.
    "genhub.v1.ApiKeyService.CreateApiKey": ("api_key", "key"),
    "genhub.v1.ApiKeyService.DeleteApiKey": ("key_id", "prefix", "create_time", "revoke_time"),
}


@dataclass
class Outcome:
    """What a call answered: a status code and, when OK, the response messages."""

    code: grpc.StatusCode
    messages: list[Message]


async def _over_grpc(stack: Stack, binding: Binding, request: Message) -> Outcome:
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        try:
            if binding.streaming:
                stream = channel.unary_stream(
                    binding.grpc_path,
                    request_serializer=binding.request_class.SerializeToString,
                    response_deserializer=binding.response_class.FromString,
                )
                return Outcome(grpc.StatusCode.OK, [m async for m in stream(request)])
            unary = channel.unary_unary(
                binding.grpc_path,
                request_serializer=binding.request_class.SerializeToString,
                response_deserializer=binding.response_class.FromString,
            )
            return Outcome(grpc.StatusCode.OK, [await unary(request)])
        except grpc.aio.AioRpcError as exc:
            return Outcome(exc.code(), [])


def _body_message(binding: Binding, response: Message) -> Message:
    """The part of a response the REST body carries (its ``response_body`` field, or all)."""
    if binding.response_body:
        part: Message = getattr(response, binding.response_body)
        return part
    return response


def _parse(expected: Message, data: Any) -> Message:
    parsed = type(expected)()
    json_format.ParseDict(data, parsed)
    return parsed


def test_the_table_covers_every_public_rpc() -> None:
    methods = {m.full_name for s in PUBLIC_SERVICES for m in s.methods}
    assert set(SAMPLES) == methods
    assert {b.method.full_name for b in BINDINGS} == methods
    assert len(BINDINGS) > len(methods)  # GetTask's additional binding is in the table


@pytest.mark.parametrize("binding", BINDINGS, ids=[b.operation_id for b in BINDINGS])
async def test_rest_answers_as_grpc_does(binding: Binding, world: World) -> None:
    sample = SAMPLES[binding.method.full_name]
    expected = await _over_grpc(world.stack, binding, await sample(world, binding))

    if binding.method.containing_service.name in ("UserService", "ApiKeyService"):
        assert expected.code == grpc.StatusCode.OK, expected  # a real answer, not UNIMPLEMENTED
    response = await send(world.http, encode_http(binding, await sample(world, binding)))

    if expected.code != grpc.StatusCode.OK:
        assert response.status_code == http_status(expected.code), response.text
        assert response.json()["code"] == expected.code.value[0]
        return
    assert response.status_code == (202 if binding.creates_task else 200), response.text
    wanted = [_body_message(binding, m) for m in expected.messages]
    if binding.streaming:
        lines = ndjson(response.text)
        got = [_parse(w, line["result"]) for w, line in zip(wanted, lines, strict=True)]
    else:
        got = [_parse(wanted[0], response.json())]
    for field in SERVER_ASSIGNED.get(binding.method.full_name, ()):
        for message in (*got, *wanted):
            message.ClearField(field)
    assert got == wanted
