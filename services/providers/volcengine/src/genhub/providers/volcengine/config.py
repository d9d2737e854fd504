"""Volcengine provider settings, read once from the worker's environment.

Keys use the names Volcengine's own tools and GenHub's deployment docs use (``ARK_API_KEY``,
``VOLCENGINE_ACCESS_KEY``, ``VOLCENGINE_SECRET_KEY``); everything else is
``GENHUB_VOLCENGINE_*``. These are the deployment defaults: a stored provider configuration or
per-request credentials override the keys (and, for Ark, the base URL and timeout) per call.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ARK_BASE_URL = "https://ark.cn-beijing.volces.com/api/v3"
VISUAL_BASE_URL = "https://visual.volcengineapi.com"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, got {value!r}")
    return value.rstrip("/")


class VolcengineSettings(BaseSettings):
    """Endpoints, deployment credentials, timeouts and pacing of the volcengine adapter."""

    model_config = SettingsConfigDict(
        env_prefix="GENHUB_VOLCENGINE_", frozen=True, extra="ignore", populate_by_name=True
    )

    ark_api_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("ARK_API_KEY", "GENHUB_VOLCENGINE_ARK_API_KEY"),
    )
    access_key_id: str = Field(
        default="",
        validation_alias=AliasChoices("VOLCENGINE_ACCESS_KEY", "GENHUB_VOLCENGINE_ACCESS_KEY_ID"),
    )
    secret_access_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices(
            "VOLCENGINE_SECRET_KEY", "GENHUB_VOLCENGINE_SECRET_ACCESS_KEY"
        ),
    )
    # Ark's data plane (Seedream, Doubao, Seedance); a stored config's api_base overrides it.
    ark_base_url: str = ARK_BASE_URL
    # The Visual (CV) OpenAPI host for Jimeng; the SDK's own default scheme is http, ours https.
    visual_base_url: str = VISUAL_BASE_URL
    # Per-call timeout when the stored configuration gives none, and the connect part of it.
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Idle pooled connections are dropped after this long. Servers and their load balancers
    # close idle connections (often after 60 s or less); a client that keeps them longer reuses
    # a dead socket and fails ("connection reset", "bad file descriptor"). Stay below theirs.
    keepalive_expiry_seconds: float = Field(default=20.0, gt=0, le=600)
    max_connections: int = Field(default=64, ge=1, le=1000)
    # First poll of a submitted job, and the pause between polls while it runs.
    poll_seconds: float = Field(default=5.0, gt=0, le=600)
    # Threads for the blocking Jimeng SDK: the worker's concurrency (each task makes at most one
    # Jimeng call at a time, so more threads would never be used).
    jimeng_threads: int = Field(
        default=4,
        ge=1,
        le=256,
        validation_alias=AliasChoices("GENHUB_VOLCENGINE_JIMENG_THREADS", "GENHUB_CONCURRENCY"),
    )

    @field_validator("ark_base_url", "visual_base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)

    @classmethod
    def from_env(cls) -> VolcengineSettings:
        """Read the environment; a bad value stops start-up with a line naming its variable.

        Raises:
            SystemExit: one line per bad variable.
        """
        try:
            return cls()
        except ValidationError as exc:
            lines = []
            for error in exc.errors():
                name = ".".join(str(part) for part in error["loc"])
                variable = name if name.isupper() else f"GENHUB_VOLCENGINE_{name.upper()}"
                lines.append(f"  {variable}: {error['msg']}")
            raise SystemExit("invalid volcengine configuration:\n" + "\n".join(lines)) from None
