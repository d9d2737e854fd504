"""Dispatcher settings, from ``GENHUB_*`` environment variables and the command line."""

from __future__ import annotations

from pydantic import Field

from genhub.common.settings import ALL_INTERFACES, InfraSettings, ListenAddress


class DispatcherSettings(InfraSettings):
    """How one provider's worker consumes, retries and sweeps."""

    provider: str = ""
    # Prefetch equals concurrency: a larger prefetch parks messages at a busy worker where a
    # later critical message cannot overtake them.
    concurrency: int = Field(default=4, ge=1, le=256)
    max_attempts: int = Field(default=5, ge=1, le=50)
    call_timeout_seconds: float = Field(default=300.0, gt=0)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_cap_seconds: float = Field(default=300.0, gt=0)
    drain_grace_seconds: float = Field(default=20.0, ge=0)
    sweep_interval_seconds: float = Field(default=15.0, gt=0)
    # A pending task older than this was never published (the gateway died mid-create).
    pending_grace_seconds: float = Field(default=30.0, gt=0)
    # A running task untouched this long lost its worker without a broker redelivery.
    stale_running_seconds: float = Field(default=900.0, gt=0)
    # A queued task untouched this long may have lost its message; republishing is harmless.
    stale_queued_seconds: float = Field(default=3600.0, gt=0)
    # How often stored provider configuration and catalogue overrides are re-read.
    config_refresh_seconds: float = Field(default=2.0, gt=0)
    # The gRPC health service (and reflection) the worker answers probes on: NOT_SERVING
    # until it consumes, and again while it drains.
    health_listen: ListenAddress = f"{ALL_INTERFACES}:50053"
