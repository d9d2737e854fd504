"""Finds provider adapters through entry points.

``genhub.providers`` maps a provider name to a factory of its adapter (a package per provider).
``genhub.compatible_providers`` maps a wire API (e.g. ``openai``) to a factory that takes a
provider name: it serves providers that have no package of their own, added by configuration
alone (a stored provider config whose ``compatible_api`` names that API).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import cast

from genhub.providers.sdk.protocol import Provider

ENTRY_POINT_GROUP = "genhub.providers"
COMPATIBLE_ENTRY_POINT_GROUP = "genhub.compatible_providers"


def available_providers() -> list[str]:
    """Names of the installed provider packages."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def compatible_apis() -> list[str]:
    """Wire APIs whose generic adapter is installed (``compatible_api`` values that work)."""
    return sorted(ep.name for ep in entry_points(group=COMPATIBLE_ENTRY_POINT_GROUP))


def load_provider(name: str, *, compatible_api: str = "") -> Provider:
    """Create the adapter for provider ``name``; its factory reads its own settings.

    The package registered as ``name`` wins. Otherwise, when ``compatible_api`` is given (from
    the provider's stored configuration), the generic adapter of that wire API is created under
    ``name``.

    Raises:
        LookupError: neither is installed; the message lists what is.
    """
    matches = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if matches:
        (entry,) = tuple(matches)
        return cast(Provider, entry.load()())
    installed = ", ".join(available_providers()) or "none"
    if not compatible_api:
        raise LookupError(
            f"no provider named {name!r} is installed (installed: {installed}), and no stored "
            "configuration makes it a compatible provider (compatible_api)"
        )
    factories = entry_points(group=COMPATIBLE_ENTRY_POINT_GROUP, name=compatible_api)
    if not factories:
        apis = ", ".join(compatible_apis()) or "none"
        raise LookupError(
            f"provider {name!r} is configured as {compatible_api!r}-compatible, but no package "
            f"serving that API is installed (compatible APIs installed: {apis})"
        )
    (factory,) = tuple(factories)
    return cast(Provider, factory.load()(name))
