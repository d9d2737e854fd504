"""Per-provider limits shared by every worker replica: requests per minute and concurrent jobs.

A worker asks before it calls the provider and gives the slot back when the call (or the whole
long-running job) is over::

    grant = await limits.acquire("openai", task_id)
    if not grant:
        # do not burn an attempt: park the message in a delay queue for grant.retry_after s
        ...
    try:
        ...  # call the provider
    finally:
        await limits.release("openai", task_id)

The holder is the task id, so a redelivered message of a task that already holds a slot renews
its lease instead of taking a second one, and a worker killed mid-call frees its slot when the
lease (``lease_seconds``) runs out. A long-running job that keeps its slot across polls calls
``acquire`` again on each poll (it renews the lease and is not counted against the rate again).
Limits come from the worker's settings; 0 turns a limit off. Redis down: granted (fail open, see
``genhub.common.ratelimit``).
"""

from __future__ import annotations

from dataclasses import dataclass

from genhub.common.ratelimit import Decision, Limiter, Rate, Usage


@dataclass(frozen=True)
class ProviderLimits:
    """One provider's limits: ``requests_per_minute`` calls started per minute (bursts up to
    ``burst``, default the per-minute limit) and ``max_concurrent_jobs`` in flight across every
    replica; 0 is unlimited. ``lease_seconds`` bounds how long a crashed holder keeps a slot."""

    requests_per_minute: int = 0
    max_concurrent_jobs: int = 0
    burst: int = 0
    lease_seconds: float = 900.0
    busy_retry_seconds: float = 1.0

    @property
    def rate(self) -> Rate | None:
        """The request rate, or None when unlimited."""
        if self.requests_per_minute <= 0:
            return None
        return Rate(self.requests_per_minute, 60.0, self.burst)


class ProviderLimiter:
    """Acquire and release provider slots; ``limits`` maps provider name to its limits
    (providers not in it are unlimited)."""

    def __init__(self, limiter: Limiter, limits: dict[str, ProviderLimits]) -> None:
        self._limiter = limiter
        self._limits = dict(limits)

    def limits(self, provider: str) -> ProviderLimits:
        """The limits of ``provider`` (unlimited when none are configured)."""
        return self._limits.get(provider, ProviderLimits())

    @staticmethod
    def key(provider: str) -> str:
        """The limiter key of a provider."""
        return f"provider:{provider}"

    async def acquire(self, provider: str, holder: str) -> Decision:
        """Granted (truthy), or refused with ``retry_after`` seconds and ``reason`` ``"rate"`` or
        ``"concurrency"``. Idempotent per ``holder`` while it holds a slot."""
        limits = self.limits(provider)
        return await self._limiter.acquire(
            self.key(provider),
            holder,
            rate=limits.rate,
            concurrency=limits.max_concurrent_jobs,
            lease_seconds=limits.lease_seconds,
            busy_retry_seconds=limits.busy_retry_seconds,
        )

    async def release(self, provider: str, holder: str) -> None:
        """Give ``holder``'s slot back (nothing happens if it holds none)."""
        if self.limits(provider).max_concurrent_jobs > 0:
            await self._limiter.release(self.key(provider), holder)

    async def usage(self, provider: str) -> Usage:
        """Current use of ``provider``'s limits (raises when Redis is down)."""
        return await self._limiter.usage(self.key(provider), self.limits(provider).rate)
