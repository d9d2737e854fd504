"""The worker's guards on its provider, built from its settings: the shared rate and
concurrency limits (``limit_hook.py``) and the circuit breakers with failover
(``breaker_hook.py``), both in Redis under ``events_prefix``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from genhub.common.breaker import BreakerPolicy, RedisBreaker
from genhub.common.provider_limits import ProviderLimiter, ProviderLimits
from genhub.common.ratelimit import RedisLimiter
from genhub.dispatcher.breaker_hook import BreakerHook
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.hooks import WorkerHook
from genhub.dispatcher.limit_hook import ProviderLimitHook

# Redis must answer a guard's question within this, or the guard fails open (safe).
REDIS_TIMEOUT_SECONDS = 0.5


def provider_limits(settings: DispatcherSettings) -> ProviderLimits:
    """This worker's provider limits. A slot's lease outlives polls of a long job (at most a
    third of the run lease apart) and is renewed while calls run, so twice the run lease
    (at least a minute) is enough; it is also how long a dead worker's slot stays taken."""
    return ProviderLimits(
        requests_per_minute=settings.provider_requests_per_minute,
        max_concurrent_jobs=settings.provider_max_concurrent_jobs,
        burst=settings.provider_burst,
        lease_seconds=max(60.0, 2 * settings.lease_seconds),
    )


def build_guards(
    settings: DispatcherSettings, client: aioredis.Redis, provider: str
) -> tuple[ProviderLimitHook, BreakerHook | None]:
    """The limit hook and (unless turned off) the breaker hook of ``provider``."""
    limiter = ProviderLimiter(
        RedisLimiter(
            client, prefix=settings.events_prefix, name="provider", timeout=REDIS_TIMEOUT_SECONDS
        ),
        {provider: provider_limits(settings)},
    )
    limits = ProviderLimitHook(limiter, provider, renew_every=settings.lease_seconds / 3)
    if not settings.breaker_enabled:
        return limits, None
    policy = BreakerPolicy(
        failure_threshold=settings.breaker_failure_threshold,
        open_seconds=settings.breaker_open_seconds,
        max_open_seconds=max(settings.breaker_max_open_seconds, settings.breaker_open_seconds),
    )
    breaker = RedisBreaker(
        client, policy, prefix=settings.events_prefix, timeout=REDIS_TIMEOUT_SECONDS
    )
    return limits, BreakerHook(breaker, provider)


@contextlib.asynccontextmanager
async def guards(settings: DispatcherSettings, provider: str) -> AsyncIterator[list[WorkerHook]]:
    """The guard hooks of ``provider`` over one Redis client, closed on exit."""
    client = aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
    limits, breaker = build_guards(settings, client, provider)
    try:
        yield [limits] if breaker is None else [limits, breaker]
    finally:
        await limits.close()
        await client.aclose()
