"""Retention and orphan sweeps: objects older than the retention period, and objects whose
task no longer exists (deleted while the store was unreachable, or by an older release)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from genhub.media._store import MediaStore

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What a sweep did: objects seen, deleted as expired, deleted as orphans."""

    seen: int = 0
    expired: int = 0
    orphaned: int = 0


async def sweep(
    store: MediaStore,
    owner_exists: Callable[[str], Awaitable[bool]],
    *,
    retention: timedelta | None,
    grace: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> SweepReport:
    """Delete expired and orphaned objects.

    An object is expired when it is older than ``retention`` (None keeps objects forever; in
    production prefer the bucket's own lifecycle rule, which costs no listing). It is an orphan
    when ``owner_exists`` (e.g. a task-store lookup) says its task is gone; objects younger
    than ``grace`` are never treated as orphans, because a worker stores a file before it
    records the result. ``owner_exists`` is asked once per owner; if it raises, the sweep stops
    (a store outage must not look like "every task is gone").
    """
    now = now or datetime.now(UTC)
    report = SweepReport()
    known: dict[str, bool] = {}
    async for obj in store.list():
        report.seen += 1
        age = now - obj.last_modified
        if retention is not None and age > retention:
            await store.delete_key(obj.key)
            report.expired += 1
            continue
        owner = store.owner_of_key(obj.key)
        if owner is None or age < grace:
            continue
        if owner not in known:
            known[owner] = await owner_exists(owner)
        if not known[owner]:
            await store.delete_key(obj.key)
            report.orphaned += 1
    log.info(
        "media sweep done",
        extra={"seen": report.seen, "expired": report.expired, "orphaned": report.orphaned},
    )
    return report
