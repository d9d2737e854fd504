"""Rate limits and concurrency limits shared by every replica, kept in Redis.

Algorithm: GCRA (the generic cell rate algorithm, ITU-T I.371; the "leaky bucket as a meter").
One Redis key per limit holds the *theoretical arrival time* (TAT) of the next request; a request
is allowed when it would not push the TAT more than ``burst`` emission intervals past now. It
costs one key and one atomic script call per request, whatever the rate, and it answers the exact
``retry_after``. Against a sliding-window log it keeps O(1) memory per key; against a fixed window
it has no double burst at window edges. In the long run at most ``limit`` requests pass per
``period``; up to ``burst`` (default ``limit``) may pass at once after an idle spell.

Concurrency ("at most N jobs in flight") is a sorted set of holders scored by lease expiry: a
holder that crashes without releasing frees its slot when its lease runs out, and acquiring again
with the same holder (a redelivered message, or a heartbeat on a long job) renews the lease
instead of taking a second slot.

Time is Redis's own clock (``TIME`` inside the script), so replicas' clocks never disagree.

When Redis is down or slow (more than ``timeout`` seconds), limits *fail open*: the request is
allowed, ``genhub_rate_limit_fail_open_total{limiter}`` counts it, and a warning is logged (at
most once per ``LOG_EVERY_SECONDS`` per limiter, so an outage does not flood the logs). The core
path never waits on Redis.

Implementations: :class:`RedisLimiter` (production) and :class:`MemoryLimiter` (the in-memory
twin for single-process tests); both pass ``tests/integration/test_ratelimit_contract.py``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

FAIL_OPEN = Counter(
    "genhub_rate_limit_fail_open_total",
    "Requests allowed without a limit check because Redis did not answer",
    ["limiter"],
)
LOG_EVERY_SECONDS = 30.0
DEFAULT_TIMEOUT = 0.5  # seconds a limit check may wait on Redis before failing open


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period`` seconds, with bursts of up to ``burst`` (default
    ``limit``). A limit of 0 means unlimited."""

    limit: int
    period: float = 60.0
    burst: int = 0

    @property
    def interval(self) -> float:
        """Seconds between requests at the steady rate (GCRA's emission interval)."""
        return self.period / self.limit

    @property
    def capacity(self) -> int:
        """How many requests may pass at once after an idle spell."""
        return self.burst or self.limit


@dataclass(frozen=True)
class Decision:
    """The answer to one limit check.

    ``allowed``: go ahead. Otherwise ``retry_after`` is the seconds to wait before asking again
    and ``reason`` says which limit refused (``"rate"`` or ``"concurrency"``). ``remaining`` is
    the number of further requests the rate would allow right now (-1 when unknown or unlimited).
    ``fail_open`` marks an answer given without Redis.
    """

    allowed: bool
    retry_after: float = 0.0
    remaining: int = -1
    reason: str = ""
    fail_open: bool = False

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Usage:
    """A limit's current use: requests the rate has counted (of ``rate_capacity``) and holders
    in flight."""

    rate_used: int
    rate_capacity: int
    in_flight: int


class Limiter(Protocol):
    """What the gateway and workers need from a limiter store."""

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """Count ``cost`` requests against ``rate`` under ``key``; a refusal counts nothing."""
        ...

    async def acquire(
        self,
        key: str,
        holder: str,
        *,
        rate: Rate | None,
        concurrency: int,
        lease_seconds: float,
        busy_retry_seconds: float = 1.0,
    ) -> Decision:
        """Take a concurrency slot (0 = unlimited) and one request of ``rate`` (None =
        unlimited), both or neither, atomically. A holder that already holds a slot renews its
        lease and is not counted against the rate again. When every slot is taken,
        ``retry_after`` is ``busy_retry_seconds`` or the earliest lease expiry, if sooner."""
        ...

    async def release(self, key: str, holder: str) -> None:
        """Give back ``holder``'s slot (no error if it holds none)."""
        ...

    async def usage(self, key: str, rate: Rate | None) -> Usage:
        """What ``key`` currently uses."""
        ...


_GCRA = """
local function gcra(key, interval, capacity, cost, now)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local ahead = new_tat - now
  local allowed_ahead = interval * capacity
  if ahead > allowed_ahead + 1e-9 then
    local left = math.floor((allowed_ahead - (tat - now)) / interval)
    return {0, string.format('%.6f', ahead - allowed_ahead), left}
  end
  redis.call('SET', key, string.format('%.6f', new_tat), 'PX', math.ceil(ahead * 1000) + 1)
  return {1, '0', math.floor((allowed_ahead - ahead) / interval)}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_HIT = (
    _GCRA
    + """
local r = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), now)
return {r[1], r[2], r[3], 'rate'}
"""
)

_ACQUIRE = (
    _GCRA
    + """
local interval, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local slots, holder, lease = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local busy_retry = tonumber(ARGV[6])
local held = false
if slots > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZSCORE', KEYS[2], holder) then
    held = true
  elseif redis.call('ZCARD', KEYS[2]) >= slots then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local wait = math.min(busy_retry, tonumber(first[2]) - now)
    return {0, string.format('%.6f', wait), -1, 'concurrency'}
  end
end
local remaining = -1
if interval > 0 and not held then
  local r = gcra(KEYS[1], interval, capacity, 1, now)
  if r[1] == 0 then return {0, r[2], r[3], 'rate'} end
  remaining = r[3]
end
if slots > 0 then
  redis.call('ZADD', KEYS[2], now + lease, holder)
  redis.call('PEXPIRE', KEYS[2], math.ceil(lease * 1000) + 1000)
end
return {1, '0', remaining, ''}
"""
)

_USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local ahead = string.format('%.6f', math.max(0, tat - now))
return {ahead, redis.call('ZCOUNT', KEYS[2], '(' .. string.format('%.6f', now), '+inf')}
"""


def _keys(prefix: str, key: str) -> list[str]:
    # One hash tag per limit, so both keys live in one Redis Cluster slot (the scripts need it).
    return [f"{prefix}limit:{{{key}}}:rate", f"{prefix}limit:{{{key}}}:slots"]


def _used(ahead: float, rate: Rate | None) -> int:
    if rate is None or rate.limit <= 0:
        return 0
    return min(rate.capacity, math.ceil(ahead / rate.interval - 1e-9))


class _FailOpen:
    """Fail-open bookkeeping shared by the Redis limiter's calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._logged_at = -math.inf

    def decision(self, exc: BaseException) -> Decision:
        FAIL_OPEN.labels(self.name).inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning(
                "rate limits fail open: Redis did not answer (%s)",
                type(exc).__name__,
                extra={"limiter": self.name},
            )
        return Decision(True, fail_open=True)


class RedisLimiter:
    """:class:`Limiter` on Redis; ``name`` labels its fail-open metric (``"gateway"``,
    ``"provider"``), ``prefix`` namespaces its keys."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "genhub:",
        name: str = "default",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout = timeout
        self._fail = _FailOpen(name)
        self._hit = client.register_script(_HIT)
        self._acquire = client.register_script(_ACQUIRE)
        self._usage = client.register_script(_USAGE)

    async def _run(
        self, script: Callable[..., object], keys: list[str], args: list[object]
    ) -> list[object]:
        async with asyncio.timeout(self._timeout):
            result = await script(keys=keys, args=args)  # type: ignore[misc]
        assert isinstance(result, list)
        return result

    @staticmethod
    def _decision(raw: list[object]) -> Decision:
        allowed, wait, remaining, reason = raw
        text = reason.decode() if isinstance(reason, bytes) else str(reason)
        return Decision(
            bool(int(str(allowed))),
            float(wait.decode() if isinstance(wait, bytes) else str(wait)),
            int(str(remaining)),
            "" if int(str(allowed)) else text,
        )

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """See :meth:`Limiter.hit`."""
        if rate.limit <= 0:
            return Decision(True)
        try:
            raw = await self._run(
                self._hit, _keys(self._prefix, key)[:1], [rate.interval, rate.capacity, cost]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            return self._fail.decision(exc)
        return self._decision(raw)

    async def acquire(
        self,
        key: str,
        holder: str,
        *,
        rate: Rate | None,
        concurrency: int,
        lease_seconds: float,
        busy_retry_seconds: float = 1.0,
    ) -> Decision:
        """See :meth:`Limiter.acquire`."""
        limited = rate is not None and rate.limit > 0
        if not limited and concurrency <= 0:
            return Decision(True)
        args: list[object] = [
            rate.interval if limited and rate is not None else 0,
            rate.capacity if limited and rate is not None else 0,
            concurrency,
            holder,
            lease_seconds,
            busy_retry_seconds,
        ]
        try:
            raw = await self._run(self._acquire, _keys(self._prefix, key), args)
        except (RedisError, OSError, TimeoutError) as exc:
            return self._fail.decision(exc)
        return self._decision(raw)

    async def release(self, key: str, holder: str) -> None:
        """See :meth:`Limiter.release`; a Redis failure is logged (the lease frees the slot)."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.zrem(_keys(self._prefix, key)[1], holder)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("slot not released, its lease will free it: %s", type(exc).__name__)

    async def usage(self, key: str, rate: Rate | None) -> Usage:
        """See :meth:`Limiter.usage`; raises ``RedisError`` when Redis is down (for operators,
        not the request path)."""
        ahead, in_flight = await self._run(self._usage, _keys(self._prefix, key), [])
        seconds = float(ahead.decode() if isinstance(ahead, bytes) else str(ahead))
        capacity = rate.capacity if rate is not None and rate.limit > 0 else 0
        return Usage(_used(seconds, rate), capacity, int(str(in_flight)))


class MemoryLimiter:
    """The in-memory twin of :class:`RedisLimiter` for one process (tests, single-box runs).
    ``clock`` returns seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}

    def _gcra(self, key: str, rate: Rate, cost: int, now: float, commit: bool) -> Decision:
        tat = max(self._tat.get(key, 0.0), now)
        new_tat = tat + rate.interval * cost
        ahead = new_tat - now
        allowed_ahead = rate.interval * rate.capacity
        if ahead > allowed_ahead + 1e-9:
            left = math.floor((allowed_ahead - (tat - now)) / rate.interval)
            return Decision(False, ahead - allowed_ahead, left, "rate")
        if commit:
            self._tat[key] = new_tat
        return Decision(True, 0.0, math.floor((allowed_ahead - ahead) / rate.interval))

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """See :meth:`Limiter.hit`."""
        if rate.limit <= 0:
            return Decision(True)
        return self._gcra(key, rate, cost, self._clock(), True)

    async def acquire(
        self,
        key: str,
        holder: str,
        *,
        rate: Rate | None,
        concurrency: int,
        lease_seconds: float,
        busy_retry_seconds: float = 1.0,
    ) -> Decision:
        """See :meth:`Limiter.acquire`."""
        now = self._clock()
        slots = self._slots.setdefault(key, {})
        for name, expiry in list(slots.items()):
            if expiry <= now:
                del slots[name]
        held = holder in slots
        if concurrency > 0 and not held and len(slots) >= concurrency:
            wait = min(busy_retry_seconds, min(slots.values()) - now)
            return Decision(False, wait, -1, "concurrency")
        remaining = -1
        if rate is not None and rate.limit > 0 and not held:
            decision = self._gcra(key, rate, 1, now, True)
            if not decision:
                return decision
            remaining = decision.remaining
        if concurrency > 0:
            slots[holder] = now + lease_seconds
        return Decision(True, 0.0, remaining)

    async def release(self, key: str, holder: str) -> None:
        """See :meth:`Limiter.release`."""
        self._slots.get(key, {}).pop(holder, None)

    async def usage(self, key: str, rate: Rate | None) -> Usage:
        """See :meth:`Limiter.usage`."""
        now = self._clock()
        ahead = max(0.0, self._tat.get(key, 0.0) - now)
        in_flight = sum(1 for e in self._slots.get(key, {}).values() if e > now)
        capacity = rate.capacity if rate is not None and rate.limit > 0 else 0
        return Usage(_used(ahead, rate), capacity, in_flight)
