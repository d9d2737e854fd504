"""Retention and orphan sweeps: objects older than the retention period (their task is marked
expired first), and objects no task references (the task was deleted while the store was
unreachable, or an attempt stored files and then failed or lost its run)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from genhub.media._store import MediaStore

log = logging.getLogger(__name__)
# Owners whose answers are remembered during one sweep. Listings come in key order, where one
# owner's files are next to each other, so a small cache asks about each owner about once.
_KNOWN_OWNERS = 1024


class Owners(Protocol):
    """What the sweep asks the owner of tasks (task-store) about a file's owner."""

    async def media_of(self, owner: str) -> Collection[str] | None:
        """The media ids task ``owner`` references, or None when there is no such task.
        Raises when it cannot tell; the sweep then stops."""
        ...

    async def expire(self, owner: str) -> None:
        """Task ``owner``'s files are about to be deleted for age: mark it expired (no error
        when it is not a succeeded task, or gone)."""
        ...


@dataclass
class SweepReport:
    """What a sweep did: objects seen, deleted as expired, deleted as orphans; tasks whose
    files expired."""

    seen: int = 0
    expired: int = 0
    orphaned: int = 0
    tasks_expired: int = 0


async def sweep(
    store: MediaStore,
    owners: Owners,
    *,
    retention: timedelta | None,
    grace: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> SweepReport:
    """Delete expired and orphaned objects.

    An object is expired when it is older than ``retention`` (None keeps objects forever); its
    task is told first (``owners.expire``), then the object is deleted, so a sweep that stops
    half-way never leaves a succeeded task pointing at deleted files. An object is an orphan
    when its task is gone or does not reference it; objects younger than ``grace`` are never
    orphans, because a worker stores a file before it records the result. If ``owners``
    raises, the sweep stops: a task-store outage must not look like "every task is gone".
    """
    now = now or datetime.now(UTC)
    report = SweepReport()
    known: dict[str, Collection[str] | None] = {}
    told: set[str] = set()
    async for obj in store.list():
        report.seen += 1
        age = now - obj.last_modified
        owner = store.owner_of_key(obj.key)
        if retention is not None and age > retention:
            if owner is not None and owner not in told:
                if len(told) >= _KNOWN_OWNERS:
                    told.clear()
                await owners.expire(owner)
                told.add(owner)
                report.tasks_expired += 1
            await store.delete_key(obj.key)
            report.expired += 1
            continue
        if owner is None or age < grace:
            continue
        if owner not in known:
            if len(known) >= _KNOWN_OWNERS:
                known.clear()
            known[owner] = await owners.media_of(owner)
        referenced = known[owner]
        if referenced is None or obj.key.rpartition("/")[2] not in referenced:
            await store.delete_key(obj.key)
            report.orphaned += 1
    log.info(
        "media sweep done",
        extra={
            "seen": report.seen,
            "expired": report.expired,
            "orphaned": report.orphaned,
            "tasks_expired": report.tasks_expired,
        },
    )
    return report
