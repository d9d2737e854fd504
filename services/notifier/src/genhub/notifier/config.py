"""Notifier settings, from ``GENHUB_*`` environment variables."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from genhub.common.settings import ALL_INTERFACES, InfraSettings, ListenAddress

# Standard Webhooks' reference schedule (Svix): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then a last
# try after 6 h more: eight attempts over about 23.6 hours.
DEFAULT_SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 21600.0]


class NotifierSettings(InfraSettings):
    """What the notifier (and ``WebhookNotifier`` inside task lifecycle code) needs."""

    # The gRPC health service (and reflection) the notifier answers probes on.
    health_listen: ListenAddress = f"{ALL_INTERFACES}:50054"
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_db: str = "genhub"
    # Comma-separated Standard Webhooks secrets ("whsec_<base64>"). Every one signs, so during a
    # rotation receivers holding either secret verify; drop the old one when they all moved.
    webhook_secrets: SecretStr = SecretStr("")
    webhook_queue: str = "genhub.webhooks"
    # Seconds to wait before retry 1, 2, ...: a comma-separated list or a JSON array.
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULE)
    )
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    webhook_concurrency: int = Field(default=8, gt=0, le=256)
    webhook_max_payload_bytes: int = Field(default=256 * 1024, gt=0)
    # Egress exceptions (CIDRs, host names): e.g. an in-cluster receiver. See genhub.egress.
    egress_allow: str = ""

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [float(part) for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every retry delay must be positive")
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets_parse(cls, value: SecretStr) -> SecretStr:
        from genhub.notifier.signing import Signer  # import cycle-free: signing has no config

        text = value.get_secret_value()
        if text.strip():
            Signer.from_setting(text)  # ValueError without echoing the secret
        return value
