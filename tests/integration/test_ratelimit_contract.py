"""The limiter contract: the Redis limiter and its in-memory twin answer alike; the Redis one
holds its limits across replicas and fails open without Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from genhub.common.provider_limits import ProviderLimiter, ProviderLimits
from genhub.common.ratelimit import Decision, Limiter, MemoryLimiter, Rate, RedisLimiter
from tests.support import infra
from tests.support.limits import dead_redis_url, drop_prefix
from tests.support.waiting import eventually

HOUR = 3600.0


@pytest.fixture(params=["redis", "memory"])
async def limiter(
    request: pytest.FixtureRequest, redis_client: aioredis.Redis, unique: str
) -> AsyncIterator[Limiter]:
    """Each contract test runs on the real Redis (own prefix) and on the twin."""
    if request.param == "memory":
        yield MemoryLimiter()
        return
    yield RedisLimiter(redis_client, prefix=f"{unique}:", name="test")
    await drop_prefix(redis_client, f"{unique}:")


async def test_a_burst_passes_then_the_rate_refuses_with_retry_after(limiter: Limiter) -> None:
    rate = Rate(5, HOUR)
    decisions = [await limiter.hit("k", rate) for _ in range(5)]
    assert all(decisions)
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    refused = await limiter.hit("k", rate)
    assert not refused
    assert refused.reason == "rate"
    assert 700 < refused.retry_after <= 720  # one emission interval: 3600 s / 5
    again = await limiter.hit("k", rate)  # a refusal counts nothing
    assert not again
    assert again.retry_after <= refused.retry_after


async def test_the_rate_refills_at_the_steady_rate(limiter: Limiter) -> None:
    rate = Rate(10, 1.0, burst=1)  # one request every 0.1 s
    assert await limiter.hit("k", rate)
    refused = await limiter.hit("k", rate)
    assert not refused
    assert 0 < refused.retry_after <= 0.1
    await eventually(lambda: limiter.hit("k", rate), bool, timeout=2, what="refill")


async def test_keys_are_independent_and_zero_is_unlimited(limiter: Limiter) -> None:
    rate = Rate(1, HOUR)
    assert await limiter.hit("a", rate)
    assert not await limiter.hit("a", rate)
    assert await limiter.hit("b", rate)
    assert all([await limiter.hit("c", Rate(0)) for _ in range(50)])


async def test_concurrency_slots_are_renewed_by_their_holder_and_freed_on_release(
    limiter: Limiter,
) -> None:
    async def take(holder: str) -> Decision:
        return await limiter.acquire("p", holder, rate=None, concurrency=2, lease_seconds=60)

    assert await take("t1")
    assert await take("t2")
    busy = await take("t3")
    assert not busy
    assert busy.reason == "concurrency"
    assert 0 < busy.retry_after <= 1.0
    assert await take("t1")  # a redelivery renews, takes no second slot
    assert (await limiter.usage("p", None)).in_flight == 2
    await limiter.release("p", "t1")
    await limiter.release("p", "nobody")
    assert await take("t3")


async def test_acquire_takes_both_limits_or_neither(limiter: Limiter) -> None:
    rate = Rate(2, HOUR)

    async def take(holder: str) -> bool:
        decision = await limiter.acquire("p", holder, rate=rate, concurrency=10, lease_seconds=60)
        return decision.allowed

    assert await take("t1")
    assert await take("t2")
    refused = await limiter.acquire("p", "t3", rate=rate, concurrency=10, lease_seconds=60)
    assert not refused
    assert refused.reason == "rate"
    usage = await limiter.usage("p", rate)
    assert (usage.rate_used, usage.rate_capacity, usage.in_flight) == (2, 2, 2)  # t3 took none
    assert await take("t1")  # a holder is not counted against the rate again


async def test_a_crashed_holder_frees_its_slot_when_the_lease_runs_out(limiter: Limiter) -> None:
    assert await limiter.acquire("p", "dead", rate=None, concurrency=1, lease_seconds=0.3)
    refused = await limiter.acquire("p", "t2", rate=None, concurrency=1, lease_seconds=0.3)
    assert not refused
    assert refused.retry_after <= 0.3  # the earliest lease expiry, sooner than the default
    await eventually(
        lambda: limiter.acquire("p", "t2", rate=None, concurrency=1, lease_seconds=60),
        bool,
        timeout=3,
        what="slot freed by the lease",
    )


async def test_provider_limiter_applies_configured_limits_only(limiter: Limiter) -> None:
    providers = ProviderLimiter(
        limiter, {"openai": ProviderLimits(requests_per_minute=600, max_concurrent_jobs=1)}
    )
    assert await providers.acquire("openai", "t1")
    busy = await providers.acquire("openai", "t2")
    assert (busy.allowed, busy.reason) == (False, "concurrency")
    assert all([await providers.acquire("demo", f"t{i}") for i in range(20)])  # unlimited
    await providers.release("openai", "t1")
    assert await providers.acquire("openai", "t2")
    usage = await providers.usage("openai")
    assert usage.in_flight == 1
    assert usage.rate_used == 2
    assert usage.rate_capacity == 600


async def test_limits_hold_across_replicas(unique: str, infrastructure: None) -> None:
    """Five replicas (own connections) fire 100 requests at once: the limit admits exactly 20,
    and of 30 jobs racing for 3 slots exactly 3 start."""
    replicas = [aioredis.Redis.from_url(infra.REDIS_URL) for _ in range(5)]
    try:
        limiters = [RedisLimiter(c, prefix=f"{unique}:", name="test", timeout=10) for c in replicas]
        rate = Rate(20, HOUR)
        hits = await asyncio.gather(*(limiters[i % 5].hit("k", rate) for i in range(100)))
        assert sum(1 for d in hits if d) == 20
        slots = await asyncio.gather(
            *(
                limiters[i % 5].acquire("p", f"t{i}", rate=None, concurrency=3, lease_seconds=60)
                for i in range(30)
            )
        )
        assert sum(1 for d in slots if d) == 3
    finally:
        await drop_prefix(replicas[0], f"{unique}:")
        for client in replicas:
            await client.aclose()


async def test_without_redis_limits_fail_open_with_a_metric_and_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = aioredis.Redis.from_url(dead_redis_url(), socket_connect_timeout=0.2)
    try:
        limiter = RedisLimiter(client, name="failopen-test")
        before = _fail_open_count("failopen-test")
        with caplog.at_level(logging.WARNING, logger="genhub.common.ratelimit"):
            rate = Rate(1, HOUR)
            decisions = [await limiter.hit("k", rate) for _ in range(3)]
            slot = await limiter.acquire("p", "t", rate=rate, concurrency=1, lease_seconds=9)
        assert all(decisions)
        assert all(d.fail_open for d in decisions)
        assert slot.allowed
        assert slot.fail_open
        assert _fail_open_count("failopen-test") == before + 4
        lines = [r for r in caplog.records if "fail open" in r.getMessage()]
        assert len(lines) == 1  # throttled: one line per outage spell, the metric counts all
    finally:
        await client.aclose()


def _fail_open_count(name: str) -> float:
    value = REGISTRY.get_sample_value("genhub_rate_limit_fail_open_total", {"limiter": name})
    return value or 0.0
