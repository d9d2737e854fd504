"""Typed settings read once from the environment (``GENHUB_*``), validated at start."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, TypeVar

from pydantic import AfterValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GENHUB_"

# Every interface: what a container needs (a pod's IP is not known in advance, and probes and
# Prometheus connect to it). ``[::]`` listens on IPv6 (and, on most hosts, IPv4) instead.
ALL_INTERFACES = "0.0.0.0"


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port); ``ValueError`` if malformed.

    An empty host means every interface; port 0 asks the OS for a free port.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{address!r}: write an IPv6 host in brackets, [{host}]:{port}")
    return host, int(port)


def _check_listen(value: str) -> str:
    if value:
        split_address(value)
    return value


# A listener address, ``host:port``; empty turns that listener off where the setting says so.
ListenAddress = Annotated[str, AfterValidator(_check_listen)]


class InfraSettings(BaseSettings):
    """Where the shared infrastructure lives, and what every service's process needs.

    URLs are secrets: they may carry passwords.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    taskstore_addr: str = "127.0.0.1:50052"
    # Comma-separated Fernet keys for provider secrets; the first encrypts (see secrets.py).
    secrets_keys: SecretStr = SecretStr("")

    # Logs (genhub.common.logging): JSON lines on stdout at this level; with a file, also
    # written there, rotated at midnight UTC and kept this many days.
    log_level: str = "INFO"
    log_file: str = ""
    log_retention_days: int = Field(default=7, ge=1, le=3650)

    # Prometheus /metrics (genhub.common.metrics); empty turns it off.
    metrics_listen: ListenAddress = f"{ALL_INTERFACES}:9090"
    # After SIGTERM, how long a server keeps answering while reporting NOT_SERVING, so load
    # balancers and Kubernetes endpoints stop sending new calls before it stops accepting them.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=300)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"{value!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


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
