"""The volcengine provider: Ark (Seedream images, Doubao text, Seedance video) through
``volcengine-ark-runtime`` and Jimeng images and videos through the ``volcengine`` Visual SDK."""

from __future__ import annotations

from genhub.providers.volcengine.config import VolcengineSettings
from genhub.providers.volcengine.provider import VolcengineProvider

__all__ = ["VolcengineProvider", "VolcengineSettings", "create_provider"]


def create_provider() -> VolcengineProvider:
    """Entry-point factory: the provider configured from the worker's environment."""
    return VolcengineProvider(VolcengineSettings.from_env())
