"""Fixtures and helpers for tests of the volcengine provider: the fake Ark and Jimeng servers
(one of each per test module), adapter settings pointing at them, and calls built from the
catalogue.

A test module imports the fixtures it uses and names them in ``__all__`` (see ``rest.py``).
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from PIL import Image
from pydantic import SecretStr

from genhub.providers.sdk import Call, CallConfig
from genhub.providers.volcengine import VolcengineProvider, VolcengineSettings
from genhub.v1 import provider_pb2, task_pb2
from tests.fakes.ark import DEFAULT_API_KEY, FakeArk
from tests.fakes.jimeng import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, FakeJimeng

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
