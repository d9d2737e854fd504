"""Gateway settings, from ``GENHUB_*`` environment variables."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, field_validator
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

    @field_validator("rest_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value
