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
