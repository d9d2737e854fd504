"""The demo provider: local, offline, deterministic; for ``make run``, demos and load tests."""

from __future__ import annotations

from genhub.providers.demo.config import DemoSettings
from genhub.providers.demo.provider import DemoProvider

__all__ = ["DemoProvider", "DemoSettings", "create_provider"]


def create_provider() -> DemoProvider:
    """Entry-point factory: the demo provider configured from ``GENHUB_DEMO_*``."""
    return DemoProvider(DemoSettings())
