"""The circuit-breaker contract: the Redis breaker and its in-memory twin answer alike; the Redis
one is shared by replicas and fails safe (closed) without Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from genhub.common.breaker import (
    PROVIDER_SIDE_CLASSES,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    MemoryBreaker,
    RedisBreaker,
)
from genhub.providers.sdk.errors import PROVIDER_SIDE, ErrorClass
from tests.support import infra
from tests.support.limits import dead_redis_url, drop_prefix
from tests.support.waiting import eventually

POLICY = BreakerPolicy(failure_threshold=3, open_seconds=0.4, max_open_seconds=5, probe_seconds=30)
CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


@pytest.fixture(params=["redis", "memory"])
async def breaker(
    request: pytest.FixtureRequest, redis_client: aioredis.Redis, unique: str
) -> AsyncIterator[CircuitBreaker]:
    """Each contract test runs on the real Redis (own prefix) and on the twin."""
    if request.param == "memory":
        yield MemoryBreaker(POLICY)
        return
    yield RedisBreaker(redis_client, POLICY, prefix=f"{unique}:")
    await drop_prefix(redis_client, f"{unique}:")


def test_the_default_tripping_classes_are_the_sdks_provider_side_classes() -> None:
    assert frozenset(c.value for c in PROVIDER_SIDE) == PROVIDER_SIDE_CLASSES
    assert BreakerPolicy().immediate == {ErrorClass.QUOTA_EXHAUSTED.value}


async def test_consecutive_provider_side_failures_open_it(breaker: CircuitBreaker) -> None:
    assert await breaker.allow("p", "m")
    assert await breaker.record("p", "m", "provider_unavailable") == CLOSED
    assert await breaker.record("p", "m", "timeout") == CLOSED
    assert await breaker.record("p", "m", "rate_limited") == OPEN
    permit = await breaker.allow("p", "m")
    assert not permit
    assert permit.state == OPEN
    assert 0 < permit.retry_after <= 0.4
    assert await breaker.allow("p", "other-model")  # per model
    snapshot = await breaker.state("p", "m")
    assert (snapshot.state, snapshot.failures, snapshot.opens) == (OPEN, 3, 1)


async def test_a_success_or_a_users_error_resets_the_count(breaker: CircuitBreaker) -> None:
    await breaker.record("p", "m", "timeout")
    await breaker.record("p", "m", "timeout")
    assert await breaker.record("p", "m", None) == CLOSED
    for error_class in ("content_refused", "invalid_parameter", "empty_result"):
        await breaker.record("p", "m", "timeout")
        await breaker.record("p", "m", "timeout")
        assert await breaker.record("p", "m", error_class) == CLOSED
    assert (await breaker.state("p", "m")).failures == 0


async def test_quota_exhaustion_opens_it_at_once_for_at_least_retry_after(
    breaker: CircuitBreaker,
) -> None:
    assert await breaker.record("p", "m", "quota_exhausted", retry_after=120) == OPEN
    permit = await breaker.allow("p", "m")
    assert not permit
    assert 110 < permit.retry_after <= 120


async def test_half_open_lets_one_probe_through_and_its_success_closes(
    breaker: CircuitBreaker,
) -> None:
    for _ in range(3):
        await breaker.record("p", "m", "provider_unavailable")
    probe = await eventually(lambda: breaker.allow("p", "m"), bool, timeout=3, what="probe")
    assert (probe.state, probe.probe) == (HALF_OPEN, True)
    others = [await breaker.allow("p", "m") for _ in range(5)]
    assert not any(others)
    assert all(p.state == HALF_OPEN for p in others)
    assert await breaker.record("p", "m", None) == CLOSED
    permit = await breaker.allow("p", "m")
    assert (permit.allowed, permit.state, permit.probe) == (True, CLOSED, False)


async def test_a_failed_probe_reopens_it_with_a_longer_cooldown(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        await breaker.record("p", "m", "timeout")
    await eventually(lambda: breaker.allow("p", "m"), bool, timeout=3, what="probe")
    assert await breaker.record("p", "m", "timeout") == OPEN
    snapshot = await breaker.state("p", "m")
    assert snapshot.opens == 2
    assert 0.4 < snapshot.retry_after <= 0.8  # doubled
    listed = await breaker.snapshots()
    assert [(s.provider, s.model, s.state) for s in listed] == [("p", "m", OPEN)]


async def test_replicas_share_one_breaker_and_one_probe(unique: str, infrastructure: None) -> None:
    replicas = [aioredis.Redis.from_url(infra.REDIS_URL) for _ in range(6)]
    try:
        breakers = [RedisBreaker(c, POLICY, prefix=f"{unique}:", timeout=10) for c in replicas]
        for b in breakers[:3]:  # three replicas see one failure each
            await b.record("p", "m", "provider_unavailable")
        assert all([(await b.state("p", "m")).state == OPEN for b in breakers])
        assert not any([await b.allow("p", "m") for b in breakers])
        await eventually(
            lambda: breakers[0].state("p", "m"),
            lambda s: s.retry_after == 0,
            timeout=3,
            what="cooldown over",
        )
        permits = await asyncio.gather(*(b.allow("p", "m") for b in breakers * 5))
        assert sum(1 for p in permits if p) == 1
        assert sum(1 for p in permits if p.probe) == 1
    finally:
        await drop_prefix(replicas[0], f"{unique}:")
        for client in replicas:
            await client.aclose()


async def test_without_redis_it_fails_safe_to_closed_with_a_metric() -> None:
    client = aioredis.Redis.from_url(dead_redis_url(), socket_connect_timeout=0.2)
    try:
        breaker = RedisBreaker(client, POLICY)
        before = _fail_safe("allow")
        for _ in range(5):
            assert await breaker.record("p", "m", "timeout") == CLOSED
        permit = await breaker.allow("p", "m")
        assert (permit.allowed, permit.state, permit.fail_safe) == (True, CLOSED, True)
        assert (await breaker.state("p", "m")).fail_safe
        assert _fail_safe("allow") == before + 1
        assert _fail_safe("record") >= 5
    finally:
        await client.aclose()


def _fail_safe(op: str) -> float:
    return REGISTRY.get_sample_value("genhub_breaker_fail_safe_total", {"op": op}) or 0.0
