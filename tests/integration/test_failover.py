"""Circuit breakers and failover on the real stack: provider-side failures open a breaker whose
state every worker shares through Redis; tasks with a fallback are served by it (and say so),
others fail fast; a probe after the cooldown closes the breaker. And the API side: fallbacks
are validated per model, bound to idempotency keys, and RetryTask is the owner's or an admin's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio as aioredis

from genhub.common.breaker import BreakerState, RedisBreaker
from genhub.dispatcher import app as dispatcher_app
from genhub.dispatcher.breaker_hook import CIRCUIT_OPEN
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.v1 import provider_pb2, task_service_pb2
from tests.support import infra
from tests.support.limits import drop_prefix
from tests.support.providers import Gauge, GaugedDemo
from tests.support.stack import Stack, dispatcher_settings, start_stack
from tests.support.tasks import (
    S,
    error_reason,
    image_request,
    text_request,
    violations,
    wait_status,
)
from tests.support.waiting import eventually

BACKUP = S.ModelRef(provider="backup", model="demo-text")


@pytest.fixture
async def bare(vhost: str, database: str) -> AsyncIterator[Stack]:
    """task-store and the gateway; the tests bring their workers."""
    async with start_stack(vhost, database, worker=False) as running:
        yield running


@pytest.fixture
async def breaker(bare: Stack) -> AsyncIterator[RedisBreaker]:
    """The stack's breakers, read straight from Redis."""
    client = aioredis.Redis.from_url(infra.REDIS_URL)
    yield RedisBreaker(client, prefix=f"{bare.database}:")
    await drop_prefix(client, f"{bare.database}:")
    await client.aclose()


def worker(stack: Stack, provider: GaugedDemo, **settings: Any) -> Any:
    """A worker of ``provider`` against ``stack`` (an async context manager)."""
    values: dict[str, Any] = {
        "events_prefix": f"{stack.database}:",
        "breaker_failure_threshold": 3,
        "breaker_open_seconds": 2,
    }
    return dispatcher_app.running(
        dispatcher_settings(stack.vhost, stack.taskstore_addr, **(values | settings)),
        provider=provider,
    )


async def test_an_open_breaker_is_shared_fails_fast_reroutes_and_a_probe_closes_it(
    bare: Stack, breaker: RedisBreaker
) -> None:
    first, second, backup = Gauge(), Gauge(), Gauge()
    async with worker(bare, GaugedDemo("demo", first)):
        down = (await bare.tasks.CreateTextTask(text_request("down [fail:retryable:9]"))).task
        failed = await wait_status(bare.tasks, down.task_id, {S.TASK_STATUS_FAILED})
    assert failed.error.code == "DEMO_RETRYABLE" and failed.attempts == 3
    assert len(first.starts) == 3
    assert (await breaker.state("demo", "demo-text")).state is BreakerState.OPEN

    # Another worker (a fresh process state) sees the breaker the first one opened.
    async with (
        worker(bare, GaugedDemo("demo", second)),
        worker(bare, GaugedDemo("backup", backup)),
    ):
        blocked = (await bare.tasks.CreateTextTask(text_request("blocked"))).task
        refused = await wait_status(bare.tasks, blocked.task_id, {S.TASK_STATUS_FAILED})
        rescued = (
            await bare.tasks.CreateTextTask(text_request("rescued", fallbacks=[BACKUP]))
        ).task
        served = await wait_status(bare.tasks, rescued.task_id, {S.TASK_STATUS_SUCCEEDED})
        assert second.starts == []  # neither task called the failing provider
        assert len(backup.starts) == 1

        # After the cooldown one probe goes through; its success closes the breaker.
        await eventually(
            lambda: breaker.state("demo", "demo-text"),
            lambda s: s.retry_after == 0,
            timeout=5,
            what="the cooldown over",
        )
        probe = (await bare.tasks.CreateTextTask(text_request("probe", fallbacks=[BACKUP]))).task
        probed = await wait_status(bare.tasks, probe.task_id, {S.TASK_STATUS_SUCCEEDED})

    assert refused.error.code == CIRCUIT_OPEN and refused.error.retryable
    assert "circuit breaker" in refused.error.message
    assert (served.provider, served.model) == ("demo", "demo-text")
    assert served.served_by == BACKUP and served.attempts == 1
    assert "rescued" in served.result.text
    assert probed.served_by.provider == "demo"
    assert len(second.starts) == 1
    assert (await breaker.state("demo", "demo-text")).state is BreakerState.CLOSED


async def test_quota_exhaustion_opens_the_breaker_at_once(
    bare: Stack, breaker: RedisBreaker
) -> None:
    provider = GaugedDemo("demo", Gauge())
    provider.quota_gone = True
    async with worker(bare, provider, breaker_failure_threshold=5):
        task = (await bare.tasks.CreateTextTask(text_request("no credit"))).task
        failed = await wait_status(bare.tasks, task.task_id, {S.TASK_STATUS_FAILED})
    assert failed.error.error_class == "quota_exhausted" and failed.attempts == 1
    assert (await breaker.state("demo", "demo-text")).state is BreakerState.OPEN


async def _register_backup(stack: Stack) -> None:
    """The demo catalogue, and a "backup" provider whose models differ from demo's."""
    await stack.store.put_provider(dispatcher_app.declared_provider(DemoProvider(DemoSettings())))
    models = [
        provider_pb2.Model(model="backup-text", type=S.TASK_TYPE_TEXT, max_prompt_chars=10),
        provider_pb2.Model(model="backup-image", type=S.TASK_TYPE_IMAGE, sizes=["1024x1024"]),
    ]
    await stack.store.put_provider(
        provider_pb2.Provider(name="backup", enabled=True, models=models)
    )


@pytest.mark.parametrize(
    ("fallbacks", "field", "words"),
    [
        ([S.ModelRef(provider="nope", model="x")], "fallbacks[0].provider", "unknown provider"),
        ([S.ModelRef(provider="backup", model="nope")], "fallbacks[0].model", "unknown model"),
        (
            [S.ModelRef(provider="backup", model="backup-image")],
            "fallbacks[0].model",
            "image model",
        ),
        ([S.ModelRef(provider="demo", model="demo-text")], "fallbacks[0]", "requested model"),
        ([S.ModelRef(provider="backup", model="backup-text")] * 2, "fallbacks[1]", "repeats"),
        (
            [S.ModelRef(provider="backup", model="backup-text")],
            "fallbacks[0]",
            "text.prompt is not valid for backup/backup-text",
        ),
        ([S.ModelRef(provider="backup", model="backup-text")] * 4, "fallbacks", "at most 3"),
    ],
)
async def test_fallbacks_are_validated_naming_the_field(
    bare: Stack, fallbacks: list[Any], field: str, words: str
) -> None:
    await _register_backup(bare)
    request = text_request("a prompt longer than ten characters", fallbacks=fallbacks)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bare.tasks.CreateTextTask(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(refused.value)
    assert field in found, found
    assert words in found[field]


async def test_fallbacks_are_validated_for_the_spec_and_credentials(bare: Stack) -> None:
    await _register_backup(bare)
    sized = image_request(fallbacks=[S.ModelRef(provider="backup", model="backup-image")])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bare.tasks.CreateImageTask(sized)
    assert "image.size" in violations(refused.value)["fallbacks[0]"]
    keyed = text_request(
        fallbacks=[S.ModelRef(provider="backup", model="backup-text")],
        credentials=S.ProviderCredentials(api_key="sk-their-own-0123456789"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as mixed:
        await bare.tasks.CreateTextTask(keyed)
    assert "credentials" in violations(mixed.value)["fallbacks"]
    ok = (
        await bare.tasks.CreateTextTask(
            text_request("short", fallbacks=[S.ModelRef(provider="backup", model="backup-text")])
        )
    ).task
    assert list(ok.fallbacks) == [S.ModelRef(provider="backup", model="backup-text")]
    assert ok.served_by == S.ModelRef(provider="demo", model="demo-text")


async def test_an_idempotency_key_is_bound_to_the_fallbacks(bare: Stack) -> None:
    await _register_backup(bare)
    fallback = S.ModelRef(provider="backup", model="backup-text")
    first = (
        await bare.tasks.CreateTextTask(
            text_request("short", idempotency_key="fb-1", fallbacks=[fallback])
        )
    ).task
    repeat = (
        await bare.tasks.CreateTextTask(
            text_request("short", idempotency_key="fb-1", fallbacks=[fallback])
        )
    ).task
    assert repeat.task_id == first.task_id
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await bare.tasks.CreateTextTask(text_request("short", idempotency_key="fb-1"))
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "fallbacks" in (reused.value.details() or "")


async def test_retry_task_runs_a_failed_task_again_and_refuses_others(
    vhost: str, database: str
) -> None:
    async with start_stack(vhost, database, rest=True) as stack:
        task = (await stack.tasks.CreateTextTask(text_request("once [fail:permanent]"))).task
        await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_FAILED})
        retried = (
            await stack.tasks.RetryTask(task_service_pb2.RetryTaskRequest(task_id=task.task_id))
        ).task
        assert retried.status == S.TASK_STATUS_QUEUED and retried.attempts == 0
        again = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_FAILED})
        assert again.attempts == 1  # a fresh budget (the demo refuses it again)
        async with httpx.AsyncClient(base_url=stack.rest_url) as http:
            answer = await http.post(f"/api/v1/ai/task/{task.task_id}:retry", json={})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "TASK_STATUS_QUEUED"
        fine = (await stack.tasks.CreateTextTask(text_request("fine"))).task
        await wait_status(stack.tasks, fine.task_id, {S.TASK_STATUS_SUCCEEDED})
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.tasks.RetryTask(task_service_pb2.RetryTaskRequest(task_id=fine.task_id))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(refused.value) == "NOT_FAILED"
        with pytest.raises(grpc.aio.AioRpcError) as nameless:
            await stack.tasks.RetryTask(task_service_pb2.RetryTaskRequest())
        assert violations(nameless.value) == {"task_id": "is required"}
