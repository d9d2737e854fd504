"""``genhub-dispatcher --provider openai`` as its own process: configured only by environment
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` as for the real API), it consumes only the openai queue,
with its own concurrency, and runs tasks through the SDK (here against the OpenAI fake)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from genhub.common import topology
from genhub.v1 import task_service_pb2
from tests.fakes.openai import FakeOpenAI
from tests.support import infra
from tests.support.openai_env import KEY, fake
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, wait_status
from tests.support.waiting import eventually

__all__ = ["fake"]


@pytest.fixture
async def bare(vhost: str, database: str) -> AsyncIterator[Stack]:
    """task-store and the gateway; the worker comes as a process."""
    async with start_stack(vhost, database, worker=False) as running:
        yield running


async def consumers(vhost: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=infra.MANAGEMENT, auth=infra.AUTH) as http:
        answer = await http.get(f"/consumers/{vhost}")
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return found


async def test_the_openai_worker_process_serves_only_its_queue(
    bare: Stack, fake: FakeOpenAI
) -> None:
    environment = os.environ | {
        "GENHUB_AMQP_URL": infra.amqp_url(bare.vhost),
        "GENHUB_REDIS_URL": infra.REDIS_URL,
        "GENHUB_TASKSTORE_ADDR": bare.taskstore_addr,
        "GENHUB_SECRETS_KEYS": bare.secrets_keys,
        "GENHUB_SWEEP_INTERVAL_SECONDS": "3600",
        "GENHUB_LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": fake.base_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "genhub.dispatcher",
        "--provider",
        "openai",
        "--concurrency",
        "2",
        env=environment,
    )
    try:
        # Starting a process that imports grpc and the openai SDK takes seconds on a busy box.
        found = await eventually(
            lambda: consumers(bare.vhost),
            lambda c: len(c) == 1,
            timeout=60,
            interval=0.2,
            what="the worker consuming",
        )
        (consumer,) = found
        assert consumer["queue"]["name"] == topology.work_queue("openai")
        assert consumer["prefetch_count"] == 2
        request = task_service_pb2.CreateTextTaskRequest(
            provider="openai", model="gpt-4.1-mini", text=S.TextSpec(prompt="from a process")
        )
        task = (await bare.tasks.CreateTextTask(request)).task
        done = await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=30)
        assert done.result.text == "Fake answer to: from a process"
        assert fake.requests("chat")[0].headers["authorization"] == f"Bearer {KEY}"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
