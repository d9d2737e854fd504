"""Per-provider limits across worker replicas, on real Redis and RabbitMQ: several workers share
one concurrency limit and one rate (counted at the provider), and a message waiting for its slot
goes through the delay queues without spending an attempt."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from genhub.dispatcher import app as dispatcher_app
from tests.support.providers import Gauge, GaugedDemo
from tests.support.stack import Stack, dispatcher_settings, start_stack
from tests.support.tasks import S, text_request, wait_status


@pytest.fixture
async def bare(vhost: str, database: str) -> AsyncIterator[Stack]:
    """task-store and the gateway; the tests bring their worker replicas."""
    async with start_stack(vhost, database, worker=False) as running:
        yield running


@contextlib.asynccontextmanager
async def replicas(
    stack: Stack, provider: GaugedDemo, count: int, **settings: Any
) -> AsyncIterator[None]:
    """``count`` workers of ``provider`` (one adapter, so its gauge sees every call)."""
    async with contextlib.AsyncExitStack() as workers:
        for _ in range(count):
            await workers.enter_async_context(
                dispatcher_app.running(
                    dispatcher_settings(
                        stack.vhost,
                        stack.taskstore_addr,
                        events_prefix=f"{stack.database}:",
                        **settings,
                    ),
                    provider=provider,
                )
            )
        yield


def _waits(reason: str) -> float:
    labels = {"provider": "demo", "reason": reason}
    return REGISTRY.get_sample_value("genhub_provider_limit_waits_total", labels) or 0.0


async def test_replicas_share_one_concurrency_limit_and_waiting_spends_no_attempt(
    bare: Stack,
) -> None:
    gauge = Gauge()
    waited = _waits("concurrency")
    # Three replicas of four deliveries each could run twelve calls at once; the limit is two.
    async with replicas(
        bare, GaugedDemo("demo", gauge), 3, concurrency=4, provider_max_concurrent_jobs=2
    ):
        tasks = [
            (await bare.tasks.CreateTextTask(text_request(f"job {i} [sleep:300]"))).task
            for i in range(8)
        ]
        done = [
            await wait_status(bare.tasks, t.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=40)
            for t in tasks
        ]
    assert gauge.most == 2
    assert len(gauge.starts) == 8  # one call per task
    assert [d.attempts for d in done] == [1] * 8
    assert _waits("concurrency") > waited  # messages did wait, in the delay queues


async def test_replicas_share_one_rate(bare: Stack) -> None:
    gauge = Gauge()
    async with replicas(
        bare,
        GaugedDemo("demo", gauge),
        2,
        concurrency=4,
        provider_requests_per_minute=120,
        provider_burst=1,
    ):
        tasks = [
            (await bare.tasks.CreateTextTask(text_request(f"rated {i}"))).task for i in range(5)
        ]
        done = [
            await wait_status(bare.tasks, t.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=40)
            for t in tasks
        ]
    starts = sorted(gauge.starts)
    # Two a second across both replicas: the fifth call no sooner than 2 s after the first
    # (less the first one's own way from its grant to its call); unlimited, all five at once.
    assert starts[4] - starts[0] >= 1.8
    assert [d.attempts for d in done] == [1] * 5
