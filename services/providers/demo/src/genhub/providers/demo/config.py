"""Demo provider settings, from ``GENHUB_DEMO_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DemoSettings(BaseSettings):
    """How slow and how flaky the demo provider pretends to be."""

    model_config = SettingsConfigDict(env_prefix="GENHUB_DEMO_", frozen=True, extra="ignore")

    latency_ms: int = Field(default=0, ge=0, le=600_000)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    video_render_seconds: float = Field(default=2.0, ge=0.0, le=3600.0)
    # A file to which every generate and submit call appends one line ("start" and "end", task
    # id, attempt, time), so fault tests and the soak can count provider calls made by worker
    # processes, including ones killed mid-call. Empty: not recorded.
    call_log: str = ""
