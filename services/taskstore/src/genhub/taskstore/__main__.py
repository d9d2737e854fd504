"""``genhub-taskstore``: run the task-store service."""

from __future__ import annotations

import asyncio

from genhub.common.logging import configure_logging
from genhub.common.settings import load_settings
from genhub.taskstore.app import serve
from genhub.taskstore.config import TaskStoreSettings


def main() -> None:
    """Entry point."""
    settings = load_settings(TaskStoreSettings)
    configure_logging(
        "taskstore",
        settings.log_level,
        file=settings.log_file,
        retention_days=settings.log_retention_days,
    )
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
