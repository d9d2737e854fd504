"""Typed settings read once from the environment (``GENHUB_*``), validated at start."""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GENHUB_"


class InfraSettings(BaseSettings):
    """Where the shared infrastructure lives. URLs are secrets: they may carry passwords."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    taskstore_addr: str = "127.0.0.1:50052"
    log_level: str = "INFO"
    # Comma-separated Fernet keys for provider secrets; the first encrypts (see secrets.py).
    secrets_keys: SecretStr = SecretStr("")


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S]) -> S:
    """Build ``cls`` from the environment, or exit with one line per bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = [
            f"  {prefix}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        sys.exit("invalid configuration in the environment:\n" + "\n".join(lines))
