"""``genhub-dispatcher --provider NAME``: run one provider's worker."""

from __future__ import annotations

import argparse
import asyncio
import os

from genhub.common.logging import configure_logging
from genhub.common.settings import load_settings
from genhub.dispatcher.app import serve
from genhub.dispatcher.config import DispatcherSettings
from genhub.media import MediaSettings
from genhub.providers.sdk import available_providers


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="genhub-dispatcher", description=__doc__)
    parser.add_argument(
        "--provider",
        default=os.environ.get("GENHUB_PROVIDER", ""),
        help=f"provider to serve (installed: {', '.join(available_providers()) or 'none'})",
    )
    parser.add_argument("--concurrency", type=int, help="tasks in flight (default 4)")
    args = parser.parse_args()
    if not args.provider:
        parser.error("--provider (or GENHUB_PROVIDER) is required")
    os.environ["GENHUB_PROVIDER"] = args.provider
    if args.concurrency is not None:
        os.environ["GENHUB_CONCURRENCY"] = str(args.concurrency)
    settings = load_settings(DispatcherSettings)
    configure_logging(
        f"dispatcher-{settings.provider}",
        settings.log_level,
        file=settings.log_file,
        retention_days=settings.log_retention_days,
    )
    asyncio.run(serve(settings, load_settings(MediaSettings)))


if __name__ == "__main__":
    main()
