"""OpenAI adapter settings: the deployment defaults, read once from the worker's environment.

A stored provider configuration (ProviderService) or per-request credentials override the key,
the base URL and the timeout for the calls they apply to; these settings fill in the rest.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAISettings(BaseSettings):
    """Deployment defaults of the ``openai`` provider (and of OpenAI-compatible providers).

    ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` are the SDK's own variable names, so a worker
    deployed with them calls the real API unchanged; every other knob is ``GENHUB_OPENAI_*``.
    """

    model_config = SettingsConfigDict(
        env_prefix="GENHUB_OPENAI_", frozen=True, extra="ignore", populate_by_name=True
    )

    api_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("OPENAI_API_KEY")
    )
    base_url: str = Field(
        default=OPENAI_BASE_URL,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "GENHUB_OPENAI_BASE_URL"),
    )
    # Per-request timeout (seconds) when the provider config sets none. gpt-image-1 at high
    # quality takes about a minute; the dispatcher's own call timeout (300 s) bounds the rest.
    timeout_seconds: float = Field(default=180.0, gt=0, le=3600)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # Idle pooled connections are closed after this many seconds. It must stay below the
    # server's own keep-alive timeout, or we reuse a socket the server has just closed
    # ("connection reset" / "bad file descriptor"): uvicorn (vLLM and most self-hosted
    # OpenAI-compatible servers) and Node.js both close idle connections after 5 s.
    keepalive_expiry_seconds: float = Field(default=4.0, ge=0, le=600)
    max_connections: int = Field(default=64, ge=1, le=10_000)
    # Distinct (key, base URL, timeout, headers) clients kept per worker process.
    max_clients: int = Field(default=16, ge=1, le=1000)
    # First poll of a Sora job after submission, and between polls when the API sends no
    # ``openai-poll-after-ms`` header (the SDK's own poll helper defaults to 1 s; renders take
    # minutes, so polling less often costs nothing).
    video_poll_seconds: float = Field(default=10.0, gt=0, le=3600)
