"""Gateway settings, from ``GENHUB_*`` environment variables."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from genhub.common.settings import ALL_INTERFACES, InfraSettings, ListenAddress
from genhub.egress import EgressPolicy


class GatewaySettings(InfraSettings):
    """Where the gateway listens and how it reaches its dependencies."""

    # gRPC API, health and reflection.
    gateway_listen: ListenAddress = f"{ALL_INTERFACES}:50051"
    events_prefix: str = "genhub:"
    catalogue_ttl_seconds: float = 5.0

    # REST/JSON transcoding (genhub.gateway.rest), /healthz and /readyz; empty turns it off.
    rest_listen: ListenAddress = f"{ALL_INTERFACES}:8080"
    rest_max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # Browser origins allowed to call the API ("*" for any); none means no CORS headers.
    # A comma-separated list or a JSON array.
    rest_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rest_docs: bool = True
    rest_call_timeout_seconds: float = Field(default=120.0, gt=0)
    rest_sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Egress exceptions for user-supplied URLs (CIDRs, host names; see genhub.egress): e.g.
    # "127.0.0.0/8" where test fakes serve reference images. Empty: public addresses only.
    egress_allow: str = ""

    @field_validator("egress_allow")
    @classmethod
    def _egress(cls, value: str) -> str:
        EgressPolicy.from_setting(value)  # ValueError names the bad entry
        return value

    # Authentication and tenancy (genhub.gateway.access, docs/security.md). Off for `make run`;
    # the Helm chart turns it on.
    auth_enabled: bool = False
    # Keys the HMAC of stored API keys and page tokens: at least 32 characters; required with
    # auth on, and the same on every gateway replica.
    api_key_pepper: SecretStr = SecretStr("")
    # An admin key taken from the environment, to create the first real keys.
    bootstrap_admin_key: SecretStr = SecretStr("")
    # How long a key lookup is cached: a revocation reaches other replicas within this.
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    # Requests per minute per API key (0: no limit); bursts up to rate_limit_burst (0: the
    # per-minute figure).
    rate_limit_per_minute: int = Field(default=600, ge=0)
    rate_limit_burst: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _auth_secrets(self) -> GatewaySettings:
        pepper = self.api_key_pepper.get_secret_value()
        if pepper and len(pepper) < 32:
            raise ValueError("GENHUB_API_KEY_PEPPER must be at least 32 characters")
        if self.auth_enabled and not pepper:
            raise ValueError("GENHUB_AUTH_ENABLED needs GENHUB_API_KEY_PEPPER")
        bootstrap = self.bootstrap_admin_key.get_secret_value()
        if bootstrap and len(bootstrap) < 32:
            raise ValueError("GENHUB_BOOTSTRAP_ADMIN_KEY must be at least 32 characters")
        return self

    @field_validator("rest_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value
