"""task-store settings, from ``GENHUB_*`` environment variables."""

from __future__ import annotations

from pydantic import SecretStr

from genhub.common.settings import ALL_INTERFACES, InfraSettings, ListenAddress


class TaskStoreSettings(InfraSettings):
    """Where task-store listens and which database it owns."""

    # gRPC API, health and reflection.
    taskstore_listen: ListenAddress = f"{ALL_INTERFACES}:50052"
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_db: str = "genhub"
    events_prefix: str = "genhub:"
