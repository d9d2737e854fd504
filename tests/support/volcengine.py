"""Fixtures and helpers for tests of the volcengine provider: the fake Ark and Jimeng servers
(one of each per test module), adapter settings pointing at them, and calls built from the
catalogue.

A test module imports the fixtures it uses and names them in ``__all__`` (see ``rest.py``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import secrets
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest
from google.protobuf import json_format
from PIL import Image
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from genhub.providers.sdk import Call, CallConfig
from genhub.providers.volcengine import VolcengineProvider, VolcengineSettings
from genhub.v1 import provider_pb2, task_pb2, task_service_pb2
from tests.fakes.ark import DEFAULT_API_KEY, FakeArk
from tests.fakes.jimeng import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, FakeJimeng
from tests.support import infra
from tests.support.stack import Stack, start_stack
from tests.support.tasks import TERMINAL, get
from tests.support.waiting import eventually

S = task_pb2


@pytest.fixture(scope="module")
async def fake_ark() -> AsyncIterator[FakeArk]:
    """A fake Ark on a free port, for the whole module."""
    fake = FakeArk()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
async def fake_jimeng() -> AsyncIterator[FakeJimeng]:
    """A fake Jimeng (Visual API) on a free port, for the whole module."""
    fake = FakeJimeng()
    await fake.start()
    yield fake
    await fake.stop()


def settings_for(ark: FakeArk, jimeng: FakeJimeng, **overrides: Any) -> VolcengineSettings:
    """Adapter settings pointing at the fakes, polling fast."""
    values: dict[str, Any] = {
        "ark_api_key": SecretStr(DEFAULT_API_KEY),
        "access_key_id": DEFAULT_ACCESS_KEY,
        "secret_access_key": SecretStr(DEFAULT_SECRET_KEY),
        "ark_base_url": f"{ark.base_url}/api/v3",
        "visual_base_url": jimeng.base_url,
        "timeout_seconds": 10.0,
        "poll_seconds": 0.1,
        "jimeng_threads": 4,
    }
    values.update(overrides)
    return VolcengineSettings(**values)


@pytest.fixture
async def volc(fake_ark: FakeArk, fake_jimeng: FakeJimeng) -> AsyncIterator[VolcengineProvider]:
    """The adapter, pointing at the fakes."""
    provider = VolcengineProvider(settings_for(fake_ark, fake_jimeng))
    yield provider
    await provider.aclose()


def marker() -> str:
    """A unique word to put in a prompt, so a test finds its own calls at a shared fake."""
    return "m" + secrets.token_hex(4)


def model(provider: VolcengineProvider, model_id: str) -> provider_pb2.Model:
    """A model of the provider's catalogue."""
    return next(m for m in provider.catalogue() if m.model == model_id)


def call(
    provider: VolcengineProvider,
    model_id: str,
    *,
    config: CallConfig | None = None,
    attempt: int = 1,
    **spec: Any,
) -> Call:
    """A call for a task of ``model_id`` with the given spec (``image=``, ``text=``,
    ``video=``)."""
    entry = model(provider, model_id)
    task = S.Task(task_id="t" + secrets.token_hex(6), provider="volcengine", model=model_id, **spec)
    task.type = entry.type
    return Call(task=task, model=entry, attempt=attempt, config=config or CallConfig())


def png_size(data: bytes) -> tuple[int, int]:
    """The pixel size of PNG bytes (fails unless they are a PNG)."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image.size


def b64_png_size(encoded: str) -> tuple[int, int]:
    """:func:`png_size` of base64 data."""
    return png_size(base64.b64decode(encoded))


def mp4_frames(data: bytes) -> tuple[int, int, int]:
    """(width, height, decoded frames) of MP4 bytes (fails unless they are an MP4)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        assert "mp4" in container.format.name
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return stream.width, stream.height, len(frames)


@contextlib.asynccontextmanager
async def volcengine_stack(
    fake_ark: FakeArk,
    fake_jimeng: FakeJimeng,
    *,
    adapter: dict[str, Any] | None = None,
    **dispatcher: Any,
) -> AsyncIterator[Stack]:
    """A whole stack (own vhost and database, removed afterwards) whose worker runs the
    volcengine adapter against the fakes, serving gRPC and REST."""
    name = "t" + secrets.token_hex(5)
    await infra.create_vhost(name)
    provider = VolcengineProvider(settings_for(fake_ark, fake_jimeng, **(adapter or {})))
    values: dict[str, Any] = {"backoff_cap_seconds": 5.0, "max_attempts": 3}
    values.update(dispatcher)
    try:
        async with start_stack(name, name, rest=True, provider=provider, **values) as running:
            yield running
    finally:
        await infra.delete_vhost(name)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.MONGO_URL)
        await mongo.drop_database(name)
        await mongo.close()


REST_ROUTES = {
    "image": "/api/v1/ai/image/task",
    "video": "/api/v1/ai/video/task",
    "text": "/api/v1/ai/text/task",
}


async def create(stack: Stack, transport: str, kind: str, body: dict[str, Any]) -> str:
    """Create a volcengine task of ``kind`` over ``transport`` ("grpc" or "rest") from its
    proto3-JSON ``body``; returns the task id."""
    full = {"provider": "volcengine", **body}
    if transport == "rest":
        async with httpx.AsyncClient(base_url=stack.rest_url, timeout=10) as http:
            response = await http.post(REST_ROUTES[kind], json=full)
        assert response.status_code == 202, response.text
        return str(response.json()["taskId"])
    request_type = {
        "image": task_service_pb2.CreateImageTaskRequest,
        "video": task_service_pb2.CreateVideoTaskRequest,
        "text": task_service_pb2.CreateTextTaskRequest,
    }[kind]
    request = json_format.ParseDict(full, request_type())
    method = {
        "image": stack.tasks.CreateImageTask,
        "video": stack.tasks.CreateVideoTask,
        "text": stack.tasks.CreateTextTask,
    }[kind]
    return str((await method(request)).task.task_id)  # type: ignore[operator]


async def finished(stack: Stack, transport: str, task_id: str, timeout: float = 20) -> S.Task:
    """Wait until the task is terminal, reading it over ``transport``; returns it."""

    async def read() -> S.Task:
        if transport == "rest":
            async with httpx.AsyncClient(base_url=stack.rest_url, timeout=10) as http:
                response = await http.get(f"/api/v1/ai/task/result/{task_id}")
            assert response.status_code == 200, response.text
            return json_format.ParseDict(response.json(), S.Task(), ignore_unknown_fields=True)
        return await get(stack.tasks, task_id)

    return await eventually(
        read, lambda t: t.status in TERMINAL, timeout=timeout, what=f"task {task_id} finished"
    )
