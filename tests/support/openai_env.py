"""Fixtures for OpenAI adapter tests: the OpenAI fake, adapters pointed at it, and a stack whose
worker runs the OpenAI adapter.

A test module imports the fixtures it uses and names them in ``__all__`` (see ``rest.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from genhub.providers.openai import OpenAIProvider, OpenAISettings
from genhub.providers.sdk import Call, CallConfig, load_catalogue
from genhub.v1 import provider_pb2, task_pb2
from tests.fakes.openai import FakeOpenAI
from tests.support.stack import Stack, start_stack

# Planted keys: tests assert they never leak anywhere.
KEY = "sk-genhub-test-DEPLOYMENT-4f1c9a7e2b6d"
STORED_KEY = "sk-genhub-test-STORED-8a2e5c1f9d3b"
REQUEST_KEY = "sk-genhub-test-REQUEST-c7d1e9a4b2f6"
ACME_KEY = "acme-test-key-5b9d2f7c1e3a"
KEYS = (KEY, STORED_KEY, REQUEST_KEY, ACME_KEY)

MODELS = {m.model: m for m in load_catalogue("genhub.providers.openai")}


def settings(base_url: str, **overrides: Any) -> OpenAISettings:
    """Adapter settings for tests: the fake, the deployment key, fast polls."""
    values: dict[str, Any] = {
        "api_key": KEY,
        "base_url": base_url,
        "video_poll_seconds": 0.2,
        "timeout_seconds": 10.0,
    }
    return OpenAISettings(**(values | overrides))


def adapter(base_url: str, **overrides: Any) -> OpenAIProvider:
    """The ``openai`` adapter with its catalogue, pointed at the fake."""
    return OpenAIProvider(settings(base_url, **overrides), models=list(MODELS.values()))


def call(task: task_pb2.Task, config: CallConfig | None = None, attempt: int = 1) -> Call:
    """A call for ``task`` on its catalogue model (an ad-hoc one for unknown models)."""
    model = MODELS.get(task.model) or provider_pb2.Model(model=task.model)
    return Call(task=task, model=model, attempt=attempt, config=config or CallConfig())


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    """The OpenAI fake, accepting the planted keys only."""
    server = FakeOpenAI(api_keys=KEYS)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def openai_stack(vhost: str, database: str, fake: FakeOpenAI) -> AsyncIterator[Stack]:
    """A stack (REST too) whose worker runs the OpenAI adapter against the fake."""
    async with start_stack(vhost, database, provider=adapter(fake.base_url), rest=True) as stack:
        yield stack
