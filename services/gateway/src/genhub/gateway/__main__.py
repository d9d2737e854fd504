"""``genhub-gateway``: run the public API."""

from __future__ import annotations

import asyncio

from genhub.common.logging import configure_logging
from genhub.common.settings import load_settings
from genhub.gateway.app import serve
from genhub.gateway.config import GatewaySettings
from genhub.media import MediaSettings


def main() -> None:
    """Entry point."""
    settings = load_settings(GatewaySettings)
    configure_logging(
        "gateway",
        settings.log_level,
        file=settings.log_file,
        retention_days=settings.log_retention_days,
    )
    asyncio.run(serve(settings, load_settings(MediaSettings)))


if __name__ == "__main__":
    main()
