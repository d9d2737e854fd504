"""A provider added by configuration alone: the OpenAI fake plays a third-party service named
``acme`` that speaks the OpenAI wire format. Its name, base URL, key and models go in through the
REST provider-config and catalogue APIs; ``genhub-dispatcher --provider acme`` (here: the same
worker runtime, loading the adapter by name) serves it."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from genhub.dispatcher import app as dispatcher_app
from genhub.v1 import (
    provider_pb2,
    provider_service_pb2,
    provider_service_pb2_grpc,
    task_service_pb2,
)
from tests.fakes.openai import FakeOpenAI
from tests.support.openai_env import ACME_KEY, fake
from tests.support.rest import client
from tests.support.stack import Stack, dispatcher_settings, start_stack
from tests.support.tasks import S, wait_status

__all__ = ["fake"]


@pytest.fixture
async def bare(vhost: str, database: str) -> AsyncIterator[Stack]:
    """task-store and the gateway (with REST); no worker yet."""
    async with start_stack(vhost, database, worker=False, rest=True) as running:
        yield running


@contextlib.asynccontextmanager
async def worker(stack: Stack, name: str) -> AsyncIterator[None]:
    """The worker runtime for provider ``name``, its adapter found by name (no instance given)."""
    settings = dispatcher_settings(
        stack.vhost,
        stack.taskstore_addr,
        provider=name,
        secrets_keys=SecretStr(stack.secrets_keys),
    )
    async with dispatcher_app.running(settings):
        yield


async def configure_acme(http: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    """What an operator sends: the provider config, then the models (types, sizes, limits)."""
    config = await http.put(
        "/api/v1/providers/acme/config",
        json={"compatibleApi": "openai", "apiBase": base_url, "apiKey": ACME_KEY, "timeout": "20s"},
    )
    assert config.status_code == 200, config.text
    image = await http.put(
        "/api/v1/providers/acme/models/acme-image-v2",
        json={
            "displayName": "Acme Image v2",
            "type": "TASK_TYPE_IMAGE",
            "sizes": ["512x512", "768x512"],
            "maxImages": 2,
        },
    )
    assert image.status_code == 200, image.text
    chat = await http.put(
        "/api/v1/providers/acme/models/acme-chat",
        json={"displayName": "Acme Chat", "type": "TASK_TYPE_TEXT", "maxTokens": 256},
    )
    assert chat.status_code == 200, chat.text
    answer: dict[str, Any] = config.json()
    return answer


async def test_a_compatible_provider_added_by_configuration_runs_tasks_over_rest_and_grpc(
    bare: Stack, fake: FakeOpenAI
) -> None:
    async with client(bare) as http:
        stored = await configure_acme(http, fake.base_url)
        assert stored["compatibleApi"] == "openai"
        assert stored["apiKey"] != ACME_KEY and stored["apiKey"].endswith(ACME_KEY[-4:])
        listed = (await http.get("/api/v1/providers/acme")).json()
        assert listed["displayName"] == "acme (OpenAI-compatible)"
        assert {m["model"] for m in listed["models"]} == {"acme-image-v2", "acme-chat"}

        async with worker(bare, "acme"):
            image = await http.post(
                "/api/v1/ai/image/task",
                json={
                    "provider": "acme",
                    "model": "acme-image-v2",
                    "image": {
                        "prompt": "a rocket",
                        "size": "768x512",
                        "n": 2,
                        "responseFormat": "IMAGE_RESPONSE_FORMAT_B64_JSON",
                    },
                    "wait": "30s",
                },
            )
            assert image.json()["status"] == "TASK_STATUS_SUCCEEDED", image.text
            request = task_service_pb2.CreateTextTaskRequest(
                provider="acme",
                model="acme-chat",
                text=S.TextSpec(prompt="hello acme", max_tokens=100),
            )
            task = (await bare.tasks.CreateTextTask(request)).task
            text = await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})

    images = image.json()["result"]["images"]
    assert len(images) == 2
    picture = Image.open(io.BytesIO(base64.b64decode(images[0]["b64Data"])))
    assert (picture.format, picture.size) == ("PNG", (768, 512))
    assert text.result.text == "Fake answer to: hello acme"
    assert text.usage.total_tokens == 7  # 2 prompt + 5 answer words
    (generated,) = fake.requests("images")
    assert generated.body == {
        "model": "acme-image-v2",
        "prompt": "a rocket",
        "n": 2,
        "size": "768x512",
        "response_format": "b64_json",
    }
    (chatted,) = fake.requests("chat")
    assert chatted.body["max_tokens"] == 100  # the field compatible servers know
    assert {s.headers["authorization"] for s in fake.calls} == {f"Bearer {ACME_KEY}"}


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"apiBase": "http://127.0.0.1:9/v1"}, "config.provider", "set compatible_api"),
        (
            {"compatibleApi": "anthropic", "apiBase": "http://h/v1"},
            "config.compatible_api",
            "openai",
        ),
        ({"compatibleApi": "openai"}, "config.api_base", "is required"),
    ],
)
async def test_a_compatible_provider_config_is_validated(
    bare: Stack, config: dict[str, Any], field: str, words: str
) -> None:
    async with client(bare) as http:
        answer = await http.put("/api/v1/providers/newco/config", json=config)
        assert answer.status_code == 400
        found = {
            v["field"]: v["description"]
            for detail in answer.json()["details"]
            for v in detail.get("fieldViolations", [])
        }
        assert words in found[field], found
        # A refused config declares nothing.
        assert (await http.get("/api/v1/providers/newco")).status_code == 404


async def test_a_provider_name_that_is_neither_installed_nor_configured_stops_the_worker(
    bare: Stack,
) -> None:
    with pytest.raises(LookupError, match="no provider named 'ghost' is installed"):
        async with worker(bare, "ghost"):
            pass
    providers = [p.name for p in await bare.store.list_providers()]
    assert "ghost" not in providers


async def test_the_same_provider_over_grpc_config(bare: Stack, fake: FakeOpenAI) -> None:
    async with grpc.aio.insecure_channel(bare.gateway_addr) as channel:
        api = provider_service_pb2_grpc.ProviderServiceStub(channel)
        config = provider_pb2.ProviderConfig(
            provider="beta", compatible_api="openai", api_base=fake.base_url, api_key=ACME_KEY
        )
        await api.UpsertProviderConfig(
            provider_service_pb2.UpsertProviderConfigRequest(config=config)
        )
        model = provider_pb2.Model(model="beta-chat", type=S.TASK_TYPE_TEXT)
        await api.UpsertModel(provider_service_pb2.UpsertModelRequest(provider="beta", model=model))
    async with worker(bare, "beta"):
        request = task_service_pb2.CreateTextTaskRequest(
            provider="beta", model="beta-chat", text=S.TextSpec(prompt="hi beta")
        )
        task = (await bare.tasks.CreateTextTask(request)).task
        done = await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert done.result.text == "Fake answer to: hi beta"
