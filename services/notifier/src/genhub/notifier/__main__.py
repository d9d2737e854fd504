"""``genhub-notifier``: deliver webhooks; ``genhub-notifier deliveries TASK_ID`` prints a
task's delivery log as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict

from genhub.common.logging import configure_logging
from genhub.common.settings import load_settings
from genhub.media import MediaSettings
from genhub.notifier.app import mongo, serve
from genhub.notifier.config import NotifierSettings
from genhub.notifier.delivery_log import DeliveryLog


async def _print_log(settings: NotifierSettings, task_id: str) -> None:
    client = mongo(settings)
    try:
        for attempt in await DeliveryLog(client, settings.mongo_db).for_task(task_id):
            print(json.dumps(asdict(attempt), default=str))
    finally:
        await client.close()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="genhub-notifier", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="deliver webhook events (the default)")
    show = sub.add_parser("deliveries", help="print a task's delivery attempts")
    show.add_argument("task_id")
    args = parser.parse_args()
    settings = load_settings(NotifierSettings)
    if args.command == "deliveries":
        asyncio.run(_print_log(settings, args.task_id))
        return
    configure_logging(
        "notifier",
        settings.log_level,
        file=settings.log_file,
        retention_days=settings.log_retention_days,
    )
    asyncio.run(serve(settings, load_settings(MediaSettings)))


if __name__ == "__main__":
    main()
