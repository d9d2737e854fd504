"""The volcengine worker as a real process (``genhub-dispatcher --provider volcengine``) against
the fake Ark: SIGKILLed while a Seedance job is being polled, its successor finishes the task
without submitting (and paying for) the job again; and it consumes only its own provider's
queue."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from genhub.common import topology
from genhub.dispatcher.app import declared_provider
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.v1 import task_service_pb2
from tests.fakes.ark import FakeArk
from tests.fakes.jimeng import FakeJimeng
from tests.support import infra
from tests.support.stack import Stack, start_stack
from tests.support.tasks import S, text_request, wait_status
from tests.support.volcengine import fake_ark, fake_jimeng, marker
from tests.support.waiting import eventually

__all__ = ["fake_ark", "fake_jimeng"]


@pytest.fixture
async def bare(vhost: str, database: str) -> AsyncIterator[Stack]:
    """task-store and gateway only: the test brings its own worker processes."""
    async with start_stack(vhost, database, worker=False) as running:
        yield running


async def _spawn(stack: Stack, ark: FakeArk, jimeng: FakeJimeng) -> asyncio.subprocess.Process:
    environment = os.environ | {
        "GENHUB_AMQP_URL": infra.amqp_url(stack.vhost),
        "GENHUB_REDIS_URL": infra.REDIS_URL,
        "GENHUB_TASKSTORE_ADDR": stack.taskstore_addr,
        "GENHUB_CONCURRENCY": "2",
        "GENHUB_MAX_ATTEMPTS": "3",
        "GENHUB_SWEEP_INTERVAL_SECONDS": "3600",
        "GENHUB_LOG_LEVEL": "WARNING",
        "GENHUB_SECRETS_KEYS": stack.secrets_keys,
        "GENHUB_VOLCENGINE_ARK_BASE_URL": f"{ark.base_url}/api/v3",
        "GENHUB_VOLCENGINE_VISUAL_BASE_URL": jimeng.base_url,
        "GENHUB_VOLCENGINE_POLL_SECONDS": "0.3",
        "ARK_API_KEY": ark.api_key,
        "VOLCENGINE_ACCESS_KEY": jimeng.access_key,
        "VOLCENGINE_SECRET_KEY": jimeng.secret_key,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genhub.dispatcher", "--provider", "volcengine", env=environment
    )
    # Ready once it has declared its catalogue to task-store (the SDK imports take a while).
    await eventually(
        stack.store.list_providers,
        lambda ps: any(p.name == "volcengine" for p in ps),
        timeout=60,
        what="volcengine worker registered",
    )
    return process


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)


async def test_sigkill_while_polling_a_video_job_never_submits_it_twice(
    bare: Stack, fake_ark: FakeArk, fake_jimeng: FakeJimeng
) -> None:
    # The demo provider is declared but has no worker: its task must stay in its own queue.
    await bare.store.put_provider(declared_provider(DemoProvider(DemoSettings())))
    first = await _spawn(bare, fake_ark, fake_jimeng)
    tag = marker()
    request = task_service_pb2.CreateVideoTaskRequest(
        provider="volcengine",
        model="doubao-seedance-1-0-pro-250528",
        video=S.VideoSpec(prompt=f"a long render {tag} [queued:300] [render:3000]"),
    )
    task = (await bare.tasks.CreateVideoTask(request)).task
    try:
        await eventually(
            lambda: _polls(fake_ark, tag), lambda n: n >= 2, timeout=30, what="job being polled"
        )
        stored = await bare.store.get(task.task_id)
        assert stored.provider_job_id == fake_ark.job(tag).id
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    finally:
        await _stop(first)

    second = await _spawn(bare, fake_ark, fake_jimeng)
    try:
        done = await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=40)
        demo = (await bare.tasks.CreateTextTask(text_request("for the demo worker"))).task
        text = text_request(f"for volcengine {tag}", provider="volcengine", model="doubao-pro-4k")
        mine = (await bare.tasks.CreateTextTask(text)).task
        await wait_status(bare.tasks, mine.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=30)
    finally:
        await _stop(second)
    assert fake_ark.count("create", tag) == 1  # the paid job was submitted exactly once
    assert done.provider_job_id == fake_ark.job(tag).id
    assert done.result.video.url.startswith(fake_ark.base_url)
    assert fake_ark.media(done.result.video.url)[4:8] == b"ftyp"
    # `--provider volcengine` consumes only its own queue.
    assert await infra.queue_depth(bare.vhost, topology.work_queue("demo")) == 1
    still = await bare.store.get(demo.task_id)
    assert still.status in (S.TASK_STATUS_PENDING, S.TASK_STATUS_QUEUED)


async def _polls(fake: FakeArk, tag: str) -> int:
    return fake.count("get", tag)
