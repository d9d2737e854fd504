"""Dispatcher settings, from ``GENHUB_*`` environment variables and the command line."""

from __future__ import annotations

from pydantic import Field

from genhub.common.settings import ALL_INTERFACES, InfraSettings, ListenAddress


class DispatcherSettings(InfraSettings):
    """How one provider's worker consumes, runs and retries."""

    provider: str = ""
    # Prefetch equals concurrency: a larger prefetch parks messages at a busy worker where a
    # later critical message cannot overtake them.
    concurrency: int = Field(default=4, ge=1, le=256)
    max_attempts: int = Field(default=5, ge=1, le=50)
    call_timeout_seconds: float = Field(default=300.0, gt=0)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_cap_seconds: float = Field(default=300.0, gt=0)
    drain_grace_seconds: float = Field(default=20.0, ge=0)
    # A run is this worker's for this long without a heartbeat (renewed every third of it
    # while a provider call runs); after a crash, another worker may take it over once it lapses.
    lease_seconds: float = Field(default=30.0, ge=1)
    # How often stored provider configuration and catalogue overrides are re-read.
    config_refresh_seconds: float = Field(default=2.0, gt=0)
    # The gRPC health service (and reflection) the worker answers probes on: NOT_SERVING
    # until it consumes, and again while it drains.
    health_listen: ListenAddress = f"{ALL_INTERFACES}:50053"

    # Redis keys (limits, breakers) live under this prefix: the same on every replica, and the
    # gateway's and task-store's ``events_prefix`` (genhubctl reads them there).
    events_prefix: str = "genhub:"
    # This provider's limits, shared by every replica through Redis (0: unlimited). A worker
    # over a limit parks the message in a delay queue without spending an attempt.
    provider_requests_per_minute: int = Field(default=0, ge=0)
    provider_burst: int = Field(default=0, ge=0)  # calls at once after a lull (0: per minute)
    provider_max_concurrent_jobs: int = Field(default=0, ge=0)
    # Circuit breaker per provider and model (genhub.common.breaker): opens after this many
    # consecutive provider-side failures (quota exhaustion: at once), probes after the cooldown.
    breaker_enabled: bool = True
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_open_seconds: float = Field(default=30.0, gt=0)
    breaker_max_open_seconds: float = Field(default=600.0, gt=0)
