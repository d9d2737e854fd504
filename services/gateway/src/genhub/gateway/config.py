"""Gateway settings, from ``GENHUB_*`` environment variables."""

from __future__ import annotations

from genhub.common.settings import InfraSettings


class GatewaySettings(InfraSettings):
    """Where the gateway listens and how it reaches its dependencies."""

    gateway_listen: str = "127.0.0.1:50051"
    events_prefix: str = "genhub:"
    catalogue_ttl_seconds: float = 5.0
    metrics_port: int = 0
