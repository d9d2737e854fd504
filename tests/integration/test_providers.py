"""ProviderService: the catalogue, model overrides, configuration with encrypted and masked
secrets, workers picking up changes without a restart, and per-request credentials."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import grpc
import pytest
from google.protobuf import duration_pb2
from pymongo import AsyncMongoClient

from genhub.common import topology
from genhub.common.secrets import SecretBox
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import Call, CallConfig, Finished
from genhub.v1 import (
    provider_pb2,
    provider_service_pb2,
    provider_service_pb2_grpc,
    task_pb2,
)
from tests.support import infra
from tests.support.stack import Stack, start_stack
from tests.support.tasks import (
    S,
    error_reason,
    image_request,
    text_request,
    violations,
    wait_status,
)
from tests.support.waiting import eventually

API_KEY = "sk-live-0123456789abcdef"
NEW_KEY = "sk-live-fedcba9876543210"
REQUEST_KEY = "sk-once-aaaabbbbccccdddd"


class RecordingDemo(DemoProvider):
    """The demo provider, remembering the configuration each call was given."""

    def __init__(self) -> None:
        super().__init__(DemoSettings())
        self.configs: list[CallConfig] = []

    async def generate(self, call: Call) -> Finished:
        self.configs.append(call.config)
        return await super().generate(call)


@pytest.fixture
def recording() -> RecordingDemo:
    return RecordingDemo()


@pytest.fixture
async def stack(vhost: str, database: str, recording: RecordingDemo) -> AsyncIterator[Stack]:
    async with start_stack(vhost, database, provider=recording) as running:
        yield running


def _providers(stack: Stack) -> provider_service_pb2_grpc.ProviderServiceAsyncStub:
    return provider_service_pb2_grpc.ProviderServiceStub(
        grpc.aio.insecure_channel(stack.gateway_addr)
    )


async def _upsert(stack: Stack, **fields: Any) -> provider_pb2.ProviderConfig:
    config = provider_pb2.ProviderConfig(provider="demo", **fields)
    request = provider_service_pb2.UpsertProviderConfigRequest(config=config)
    return (await _providers(stack).UpsertProviderConfig(request)).config


async def test_list_and_get_providers_show_the_catalogue(stack: Stack) -> None:
    api = _providers(stack)
    listed = (await api.ListProviders(provider_service_pb2.ListProvidersRequest())).providers
    assert [p.name for p in listed] == ["demo"]
    demo = (await api.GetProvider(provider_service_pb2.GetProviderRequest(name="demo"))).provider
    assert demo.enabled
    assert {m.model for m in demo.models} == {"demo-image", "demo-video", "demo-text"}
    image = next(m for m in demo.models if m.model == "demo-image")
    assert "1024x1024" in image.sizes
    assert image.max_images == 4
    video = next(m for m in demo.models if m.model == "demo-video")
    assert video.long_running
    assert list(video.durations_seconds) == [2, 4, 5]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await api.GetProvider(provider_service_pb2.GetProviderRequest(name="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_config_round_trip_is_masked_and_encrypted_at_rest(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    saved = await _upsert(
        stack,
        api_base="https://ark.example.test/api/v3",
        api_key=API_KEY,
        access_key_id="AKLT-id",
        secret_access_key="very-secret-access-key",
        models=["demo-image", "demo-text"],
        default_model="demo-image",
        timeout=duration_pb2.Duration(seconds=30),
        max_retries=2,
        extra_headers={"X-Project-Name": "genhub"},
    )
    assert saved.api_key == "sk-****cdef"
    assert saved.secret_access_key == "****-key"
    assert saved.api_base == "https://ark.example.test/api/v3"
    api = _providers(stack)
    got = (
        await api.GetProviderConfig(provider_service_pb2.GetProviderConfigRequest(provider="demo"))
    ).config
    assert got.api_key == "sk-****cdef"
    assert got.default_model == "demo-image"
    assert got.enabled
    listed = (
        await api.ListProviderConfigs(provider_service_pb2.ListProviderConfigsRequest())
    ).configs
    assert [c.api_key for c in listed] == ["sk-****cdef"]

    raw = await mongo[stack.database]["providers"].find_one({"_id": "demo"})
    assert raw is not None
    text = json.dumps(raw, default=str)
    assert API_KEY not in text
    assert "very-secret-access-key" not in text
    token = raw["config"]["api_key_ciphertext"]
    assert SecretBox([stack.secrets_keys]).decrypt(token) == API_KEY

    # Saving without the secret keeps the stored one.
    again = await _upsert(stack, api_base="https://ark2.example.test/api/v3")
    assert again.api_key == "sk-****cdef"


async def test_a_worker_uses_an_updated_key_on_the_next_task_without_restarting(
    stack: Stack, recording: RecordingDemo
) -> None:
    await _upsert(stack, api_key=API_KEY)

    async def run_and_get_key() -> str:
        task = (await stack.tasks.CreateTextTask(text_request())).task
        await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
        return recording.configs[-1].api_key

    assert await eventually(run_and_get_key, lambda k: k == API_KEY, what="first key in use")
    assert recording.configs[-1].source == "stored"
    await _upsert(stack, api_key=NEW_KEY)
    assert await eventually(run_and_get_key, lambda k: k == NEW_KEY, what="new key in use")

    await _providers(stack).DeleteProviderConfig(
        provider_service_pb2.DeleteProviderConfigRequest(provider="demo")
    )
    await eventually(run_and_get_key, lambda k: k == "", what="deployment defaults again")
    assert recording.configs[-1].source == "deployment"


async def test_per_request_credentials_are_used_once_and_stored_nowhere(
    vhost: str,
    database: str,
    mongo: AsyncMongoClient[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recording = RecordingDemo()
    async with start_stack(vhost, database, worker=False) as bare:
        # Declare the catalogue, as a worker would, but consume nothing yet.
        from genhub.dispatcher.app import declared_provider

        await bare.store.put_provider(declared_provider(recording))
        request = text_request("with my own key")
        request.credentials.api_key = REQUEST_KEY
        task = (await bare.tasks.CreateTextTask(request)).task
        assert task.request_credentials

        connection = await aio_pika.connect(infra.amqp_url(vhost))
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(topology.work_queue("demo"))
            message = await queue.get(no_ack=False)
            assert message is not None
            body = message.body.decode()
            assert REQUEST_KEY not in body
            assert json.loads(body)["credentials"]  # present, encrypted
            await message.nack(requeue=True)

    async with start_stack(
        vhost, database, provider=recording, secrets_keys=bare.secrets_keys
    ) as stack:
        done = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
        assert "with my own key" in done.result.text
        assert [c.api_key for c in recording.configs] == [REQUEST_KEY]
        assert recording.configs[0].source == "request"
        # The next task, without credentials, does not inherit them.
        other = (await stack.tasks.CreateTextTask(text_request("plain"))).task
        await wait_status(stack.tasks, other.task_id, {S.TASK_STATUS_SUCCEEDED})
        assert recording.configs[-1].api_key == ""

    raw = await mongo[database]["tasks"].find_one({"_id": task.task_id})
    assert REQUEST_KEY not in json.dumps(raw, default=str)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert REQUEST_KEY not in logged
    assert any(r.name.startswith("genhub.") for r in caplog.records)  # the scan saw our logs


async def test_a_catalogue_override_adds_a_model_that_runs(stack: Stack) -> None:
    model = provider_pb2.Model(
        model="demo-image-xl",
        display_name="Demo XL",
        type=task_pb2.TASK_TYPE_IMAGE,
        sizes=["1536x1536"],
        max_images=1,
        max_prompt_chars=1000,
    )
    with pytest.raises(grpc.aio.AioRpcError) as before:
        await stack.tasks.CreateImageTask(image_request(model="demo-image-xl"))
    assert before.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    await _providers(stack).UpsertModel(
        provider_service_pb2.UpsertModelRequest(provider="demo", model=model)
    )
    request = image_request("an override at work", model="demo-image-xl")
    request.image.size = "1536x1536"
    task = (await stack.tasks.CreateImageTask(request)).task
    done = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.result.images[0].width == 1536

    demo = (
        await _providers(stack).GetProvider(provider_service_pb2.GetProviderRequest(name="demo"))
    ).provider
    assert "demo-image-xl" in {m.model for m in demo.models}
    await _providers(stack).DeleteModel(
        provider_service_pb2.DeleteModelRequest(provider="demo", model="demo-image-xl")
    )

    async def refused() -> bool:
        try:
            await stack.tasks.CreateImageTask(request)
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        return False

    assert await eventually(refused, bool, what="override removed")


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"api_base": "ftp://example.test"}, "config.api_base", "http"),
        ({"api_base": "not a url"}, "config.api_base", "http"),
        (
            {"models": ["demo-image"], "default_model": "demo-text"},
            "config.default_model",
            "not in the model list",
        ),
        ({"models": ["nope"]}, "config.models[0]", "catalogue"),
        ({"timeout": duration_pb2.Duration(seconds=-1)}, "config.timeout", "between"),
        ({"max_retries": 11}, "config.max_retries", "between"),
        ({"extra_headers": {"Authorization": "x"}}, "config.extra_headers", "api_key"),
        ({"extra_headers": {"X-Api-Key": "x"}}, "config.extra_headers", "api_key"),
        ({"extra_headers": {"X-Ok\n": "x"}}, "config.extra_headers", "not a valid header"),
        ({"api_base": "http://[::1"}, "config.api_base", "http"),
        ({"api_base": "https://user:pw@ark.example.test"}, "config.api_base", "credentials"),
        ({"secret_access_key": "s"}, "config.access_key_id", "required"),
    ],
)
async def test_bad_config_names_the_field(
    stack: Stack, fields: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _upsert(stack, **fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(raised.value)
    assert words in found[field], found


async def test_a_config_for_an_unknown_provider_names_the_field(stack: Stack) -> None:
    request = provider_service_pb2.UpsertProviderConfigRequest(
        config=provider_pb2.ProviderConfig(provider="nope", api_key=API_KEY)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _providers(stack).UpsertProviderConfig(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown provider" in violations(raised.value)["config.provider"]
    assert API_KEY not in (raised.value.details() or "")


async def test_disable_then_enable_a_provider(stack: Stack) -> None:
    api = _providers(stack)
    disabled = await api.DisableProvider(
        provider_service_pb2.DisableProviderRequest(provider="demo")
    )
    assert not disabled.config.enabled

    async def create_error() -> grpc.aio.AioRpcError | None:
        try:
            await stack.tasks.CreateTextTask(text_request())
        except grpc.aio.AioRpcError as exc:
            return exc
        return None

    error = await eventually(create_error, lambda e: e is not None, what="provider refused")
    assert error is not None
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "PROVIDER_DISABLED"
    assert "/api/v1/providers/demo:enable" in (error.details() or "")

    enabled = await api.EnableProvider(provider_service_pb2.EnableProviderRequest(provider="demo"))
    assert enabled.config.enabled
    await eventually(create_error, lambda e: e is None, what="provider accepted again")


async def test_rotated_keys_reencrypt_stored_secrets(
    vhost: str, database: str, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    old = SecretBox.generate_key()
    new = SecretBox.generate_key()
    async with start_stack(vhost, database, secrets_keys=old) as first:
        await _upsert(first, api_key=API_KEY)
    # A new key first, the old one still listed: the gateway re-encrypts at start.
    async with start_stack(vhost, database, secrets_keys=f"{new},{old}"):
        pass
    raw = await mongo[database]["providers"].find_one({"_id": "demo"})
    assert raw is not None
    token = raw["config"]["api_key_ciphertext"]
    assert SecretBox([new]).decrypt(token) == API_KEY
