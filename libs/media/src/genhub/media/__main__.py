"""``genhub-media sweep``: one retention and orphan sweep of the media store (docs/media.md,
"Deleting and retention"); ``--every SECONDS`` repeats it until SIGTERM/SIGINT (or run it as a
Kubernetes CronJob)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from datetime import timedelta

from genhub.common import store_client
from genhub.common.errors import GenHubError
from genhub.common.logging import configure_logging
from genhub.common.server import wait_for_signal
from genhub.common.settings import load_settings
from genhub.media._config import MediaSettings, build_store
from genhub.media._errors import MediaError
from genhub.media._sweep import SweepReport, sweep
from genhub.media._task_owners import TaskStoreOwners

log = logging.getLogger(__name__)


class SweepSettings(MediaSettings):
    """The media settings plus where task-store answers (``GENHUB_TASKSTORE_ADDR``)."""

    taskstore_addr: str = "127.0.0.1:50052"
    log_level: str = "INFO"


async def sweep_once(settings: SweepSettings, grace: timedelta = timedelta(hours=1)) -> SweepReport:
    """Delete files older than ``GENHUB_MEDIA_RETENTION_DAYS`` (their tasks expired first) and
    files no task references (older than ``grace``). Raises MediaError or GenHubError when the
    object store or task-store fails (nothing is deleted on a task-store failure's account)."""
    days = settings.media_retention_days
    store = build_store(settings, fetch=False)
    try:
        async with store_client.connect(settings.taskstore_addr) as client:
            return await sweep(
                store,
                TaskStoreOwners(client),
                retention=timedelta(days=days) if days else None,
                grace=grace,
            )
    finally:
        await store.aclose()


async def _every(settings: SweepSettings, seconds: float, grace: timedelta) -> None:
    while True:
        try:
            await sweep_once(settings, grace)
        except (MediaError, GenHubError) as exc:
            log.warning("media sweep stopped; next one in %gs: %s", seconds, exc)
        await asyncio.sleep(seconds)


async def _until_signal(settings: SweepSettings, seconds: float, grace: timedelta) -> None:
    job = asyncio.create_task(_every(settings, seconds, grace))
    await wait_for_signal()
    job.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await job


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="genhub-media", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("sweep", help="delete expired and orphaned media files")
    run.add_argument("--every", type=float, default=0.0, help="repeat every SECONDS")
    run.add_argument(
        "--grace", type=float, default=3600.0, help="files younger than SECONDS are never orphans"
    )
    args = parser.parse_args()
    settings = load_settings(SweepSettings)
    if not settings.enabled:
        parser.error("GENHUB_MEDIA_BACKEND is empty: there is no media store to sweep")
    configure_logging("media-sweep", settings.log_level)
    grace = timedelta(seconds=args.grace)
    if args.every > 0:
        asyncio.run(_until_signal(settings, args.every, grace))
        return
    report = asyncio.run(sweep_once(settings, grace))
    print(
        f"seen {report.seen}, expired {report.expired} (tasks {report.tasks_expired}), "
        f"orphaned {report.orphaned}"
    )


if __name__ == "__main__":
    main()
