"""task-store settings, from ``GENHUB_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

from genhub.common.settings import ALL_INTERFACES, InfraSettings, ListenAddress


class TaskStoreSettings(InfraSettings):
    """Where task-store listens, which database it owns, how it publishes and reaps."""

    # gRPC API, health and reflection.
    taskstore_listen: ListenAddress = f"{ALL_INTERFACES}:50052"
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_db: str = "genhub"
    events_prefix: str = "genhub:"
    # The outbox relay announces itself this often; a relay silent for ``relay_dead_seconds``
    # is presumed dead and its unpublished tasks are published by another.
    relay_heartbeat_seconds: float = Field(default=10.0, gt=0)
    relay_dead_seconds: float = Field(default=60.0, gt=0)
    # The reaper's pass interval, and how long a queued task may wait untouched before its
    # message is presumed lost (republishing is harmless: one delivery claims a run).
    reap_interval_seconds: float = Field(default=15.0, gt=0)
    stale_queued_seconds: float = Field(default=3600.0, gt=0)
    # Tasks written as ``pending`` (before task-store published its own messages).
    pending_grace_seconds: float = Field(default=30.0, gt=0)
    # Webhook events are queued here for genhub-notifier (its GENHUB_WEBHOOK_QUEUE).
    webhook_queue: str = "genhub.webhooks"
    # How often the queue depth and consumer gauges (genhub_queue_*) are read from the broker.
    queue_metrics_seconds: float = Field(default=15.0, gt=0)
