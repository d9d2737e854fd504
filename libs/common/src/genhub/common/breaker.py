"""Circuit breakers per provider and model, shared by every worker replica through Redis.

States (Nygard, *Release It!*; the same three as resilience4j and pybreaker)::

    closed --(N consecutive provider-side failures, or one quota failure)--> open
    open --(cooldown elapsed; the next allow() takes the single probe)--> half_open
    half_open --(probe succeeds)--> closed
    half_open --(probe fails)--> open, cooldown doubled (capped)

What counts: :meth:`CircuitBreaker.record` takes the provider error class
(``genhub.providers.sdk.errors.ErrorClass`` values, plain strings here so this library does not
depend on the SDK). Classes in ``BreakerPolicy.tripping`` (the SDK's ``PROVIDER_SIDE``: rate
limited, quota exhausted, auth, provider unavailable, timeout) count as failures; classes in
``BreakerPolicy.immediate`` (quota exhausted: nobody is served until someone pays) open the
breaker at once. Any other outcome, including a user's refused prompt, means the provider
answered, so it counts as a success. A ``retry_after`` with the failure (a provider's
``Retry-After``) lengthens the cooldown to at least that.

Every transition is one Lua script on Redis time, so replicas agree and two workers cannot both
take the half-open probe. When Redis does not answer, the breaker *fails safe to closed*: calls
are allowed, ``genhub_breaker_fail_safe_total{op}`` counts it and a warning is logged (at most once
per 30 s); the core path keeps working.

Implementations: :class:`RedisBreaker` and the in-memory twin :class:`MemoryBreaker`; both pass
``tests/integration/test_breaker_contract.py``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

FAIL_SAFE = Counter(
    "genhub_breaker_fail_safe_total",
    "Breaker operations answered as closed because Redis did not answer",
    ["op"],
)
TRANSITIONS = Counter(
    "genhub_breaker_opened_total", "Times a provider's breaker opened", ["provider", "model"]
)
LOG_EVERY_SECONDS = 30.0
KEY_TTL_SECONDS = 7 * 24 * 3600  # an idle breaker's state is forgotten after a week

# genhub.providers.sdk.errors.PROVIDER_SIDE, as strings (tests check the two agree).
PROVIDER_SIDE_CLASSES = frozenset(
    {"rate_limited", "quota_exhausted", "auth", "provider_unavailable", "timeout"}
)


class BreakerState(StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and for how long (seconds)."""

    failure_threshold: int = 5
    open_seconds: float = 30.0
    max_open_seconds: float = 600.0
    probe_seconds: float = 60.0  # how long the half-open probe may take before another is let in
    tripping: frozenset[str] = PROVIDER_SIDE_CLASSES
    immediate: frozenset[str] = frozenset({"quota_exhausted"})

    def outcome(self, error_class: str | None) -> str:
        """``"success"``, ``"failure"`` or ``"trip"`` (open now) for an error class (None: the
        call succeeded)."""
        if error_class is None:
            return "success"
        if error_class in self.immediate:
            return "trip"
        return "failure" if error_class in self.tripping else "success"


@dataclass(frozen=True)
class Permit:
    """The answer of :meth:`CircuitBreaker.allow`: truthy when the call may go ahead.
    ``probe`` marks the single half-open trial call; ``retry_after`` (seconds) says when to ask
    again when refused."""

    allowed: bool
    state: BreakerState
    retry_after: float = 0.0
    probe: bool = False
    fail_safe: bool = False

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Snapshot:
    """A breaker's state for operators: consecutive failures, times opened in a row, and
    seconds until an open breaker lets a probe through."""

    provider: str
    model: str
    state: BreakerState
    failures: int = 0
    opens: int = 0
    retry_after: float = 0.0
    fail_safe: bool = False


class CircuitBreaker(Protocol):
    """What the worker and failover routing need."""

    async def allow(self, provider: str, model: str) -> Permit:
        """May a call to ``provider``/``model`` go ahead now?"""
        ...

    async def record(
        self, provider: str, model: str, error_class: str | None, retry_after: float | None = None
    ) -> BreakerState:
        """Report a call's outcome (``error_class`` None for success); returns the new state."""
        ...

    async def state(self, provider: str, model: str) -> Snapshot:
        """The breaker's current state."""
        ...

    async def snapshots(self) -> list[Snapshot]:
        """Every breaker with stored state, by provider and model."""
        ...


def _member(provider: str, model: str) -> str:
    return f"{provider}/{model}"


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function f(x) return string.format('%.6f', x) end
"""

_ALLOW = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local state = h[1] or 'closed'
if state == 'closed' then return {1, '0', 'closed', 0} end
if state == 'open' then
  local open_until = tonumber(h[2] or '0')
  if now < open_until then return {0, f(open_until - now), 'open', 0} end
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', 'half_open')
end
local probe_until = tonumber(h[3] or '0')
if now < probe_until then return {0, f(probe_until - now), 'half_open', 0} end
redis.call('HSET', KEYS[1], 'probe_until', f(now + tonumber(ARGV[1])))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {1, '0', 'half_open', 1}
"""
)

_RECORD = (
    _NOW
    + """
local outcome, retry_after = ARGV[1], tonumber(ARGV[2])
local threshold, open_s, max_open = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('SADD', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
if outcome == 'success' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0)
  redis.call('HDEL', KEYS[1], 'open_until', 'probe_until')
  return {'closed', 0}
end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'open' then return {'open', 0} end
if outcome == 'trip' or state == 'half_open' or failures >= threshold then
  local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
  local cooldown = math.min(max_open, open_s * 2 ^ (opens - 1))
  cooldown = math.max(cooldown, retry_after)
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', f(now + cooldown))
  redis.call('HDEL', KEYS[1], 'probe_until')
  return {'open', 1}
end
redis.call('HSET', KEYS[1], 'state', state)
return {state, 0}
"""
)

_STATE = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opens', 'open_until')
local wait = 0
if h[1] == 'open' then wait = math.max(0, tonumber(h[4] or '0') - now) end
return {h[1] or 'closed', h[2] or '0', h[3] or '0', f(wait)}
"""
)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Degraded:
    def __init__(self) -> None:
        self._logged_at = -math.inf

    def note(self, op: str, exc: BaseException) -> None:
        FAIL_SAFE.labels(op).inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning("circuit breakers fail safe (closed): Redis did not answer (%s)", exc)


class RedisBreaker:
    """:class:`CircuitBreaker` with state in Redis under ``prefix``."""

    def __init__(
        self,
        client: aioredis.Redis,
        policy: BreakerPolicy | None = None,
        *,
        prefix: str = "genhub:",
        timeout: float = 0.5,
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self._client = client
        self._prefix = prefix
        self._timeout = timeout
        self._degraded = _Degraded()
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)
        self._state = client.register_script(_STATE)

    def _key(self, provider: str, model: str) -> str:
        return f"{self._prefix}breaker:{_member(provider, model)}"

    @property
    def _index(self) -> str:
        return f"{self._prefix}breakers"

    async def _run(
        self, script: Callable[..., object], keys: list[str], args: list[object]
    ) -> list[object]:
        async with asyncio.timeout(self._timeout):
            result = await script(keys=keys, args=args)  # type: ignore[misc]
        assert isinstance(result, list)
        return result

    async def allow(self, provider: str, model: str) -> Permit:
        """See :meth:`CircuitBreaker.allow`."""
        args: list[object] = [self.policy.probe_seconds, KEY_TTL_SECONDS]
        try:
            raw = await self._run(self._allow, [self._key(provider, model)], args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._degraded.note("allow", exc)
            return Permit(True, BreakerState.CLOSED, fail_safe=True)
        allowed, wait, state, probe = raw
        return Permit(
            bool(int(_text(allowed))),
            BreakerState(_text(state)),
            float(_text(wait)),
            bool(int(_text(probe))),
        )

    async def record(
        self, provider: str, model: str, error_class: str | None, retry_after: float | None = None
    ) -> BreakerState:
        """See :meth:`CircuitBreaker.record`."""
        p = self.policy
        args: list[object] = [
            p.outcome(error_class),
            retry_after or 0,
            p.failure_threshold,
            p.open_seconds,
            p.max_open_seconds,
            KEY_TTL_SECONDS,
            _member(provider, model),
        ]
        try:
            raw = await self._run(self._record, [self._key(provider, model), self._index], args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._degraded.note("record", exc)
            return BreakerState.CLOSED
        state, opened = raw
        if int(_text(opened)):
            TRANSITIONS.labels(provider, model).inc()
            log.warning(
                "circuit breaker opened",
                extra={"provider": provider, "model": model, "error_class": error_class},
            )
        return BreakerState(_text(state))

    async def state(self, provider: str, model: str) -> Snapshot:
        """See :meth:`CircuitBreaker.state`."""
        try:
            raw = await self._run(self._state, [self._key(provider, model)], [])
        except (RedisError, OSError, TimeoutError) as exc:
            self._degraded.note("state", exc)
            return Snapshot(provider, model, BreakerState.CLOSED, fail_safe=True)
        state, failures, opens, wait = (_text(x) for x in raw)
        return Snapshot(
            provider, model, BreakerState(state), int(failures), int(opens), float(wait)
        )

    async def snapshots(self) -> list[Snapshot]:
        """See :meth:`CircuitBreaker.snapshots`."""
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._client.smembers(self._index)
            members = sorted(_text(m) for m in raw)
        except (RedisError, OSError, TimeoutError) as exc:
            self._degraded.note("state", exc)
            return []
        found = []
        for member in members:
            provider, _, model = member.partition("/")
            found.append(await self.state(provider, model))
        return found


@dataclass
class _Memory:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opens: int = 0
    open_until: float = 0.0
    probe_until: float = 0.0


@dataclass
class MemoryBreaker:
    """The in-memory twin of :class:`RedisBreaker` (one process); ``clock`` returns seconds."""

    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], float] = time.monotonic
    _breakers: dict[tuple[str, str], _Memory] = field(default_factory=dict)

    async def allow(self, provider: str, model: str) -> Permit:
        """See :meth:`CircuitBreaker.allow`."""
        now = self.clock()
        b = self._breakers.get((provider, model))
        if b is None or b.state == BreakerState.CLOSED:
            return Permit(True, BreakerState.CLOSED)
        if b.state == BreakerState.OPEN:
            if now < b.open_until:
                return Permit(False, b.state, b.open_until - now)
            b.state = BreakerState.HALF_OPEN
        if now < b.probe_until:
            return Permit(False, b.state, b.probe_until - now)
        b.probe_until = now + self.policy.probe_seconds
        return Permit(True, b.state, probe=True)

    async def record(
        self, provider: str, model: str, error_class: str | None, retry_after: float | None = None
    ) -> BreakerState:
        """See :meth:`CircuitBreaker.record`."""
        now, p = self.clock(), self.policy
        b = self._breakers.setdefault((provider, model), _Memory())
        outcome = p.outcome(error_class)
        if outcome == "success":
            self._breakers[(provider, model)] = _Memory()
            return BreakerState.CLOSED
        b.failures += 1
        if b.state == BreakerState.OPEN:
            return b.state
        if (
            outcome == "trip"
            or b.state == BreakerState.HALF_OPEN
            or (b.failures >= p.failure_threshold)
        ):
            b.opens += 1
            cooldown = min(p.max_open_seconds, p.open_seconds * 2 ** (b.opens - 1))
            b.state = BreakerState.OPEN
            b.open_until = now + max(cooldown, retry_after or 0)
            b.probe_until = 0.0
            TRANSITIONS.labels(provider, model).inc()
        return b.state

    async def state(self, provider: str, model: str) -> Snapshot:
        """See :meth:`CircuitBreaker.state`."""
        b = self._breakers.get((provider, model), _Memory())
        wait = max(0.0, b.open_until - self.clock()) if b.state == BreakerState.OPEN else 0.0
        return Snapshot(provider, model, b.state, b.failures, b.opens, wait)

    async def snapshots(self) -> list[Snapshot]:
        """See :meth:`CircuitBreaker.snapshots`."""
        return [await self.state(p, m) for p, m in sorted(self._breakers)]
