"""Finds provider adapters through the ``genhub.providers`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import cast

from genhub.providers.sdk.protocol import Provider

ENTRY_POINT_GROUP = "genhub.providers"


def available_providers() -> list[str]:
    """Names of the installed provider packages."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_provider(name: str) -> Provider:
    """Create the adapter registered as ``name``; its factory reads its own settings."""
    matches = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not matches:
        installed = ", ".join(available_providers()) or "none"
        raise LookupError(f"no provider named {name!r} is installed (installed: {installed})")
    (entry,) = tuple(matches)
    return cast(Provider, entry.load()())
