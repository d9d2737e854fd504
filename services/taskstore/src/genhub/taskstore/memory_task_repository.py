"""An in-memory twin of the task repository, for fast tests of lifecycle and worker policy.

It keeps the semantics the lifecycle relies on: unique ``dedupe_key``, atomic guarded updates,
newest-first ordering by ``_id``. It passes the same contract suite as MongoTaskRepository.
"""

from __future__ import annotations

import copy
from datetime import datetime

from genhub.taskstore.lifecycle import Change, Guard
from genhub.taskstore.task_repository import Document, TaskQuery


class MemoryTaskRepository:
    """Tasks in a dict; every method completes without awaiting, so each is atomic."""

    def __init__(self) -> None:
        self.tasks: dict[str, Document] = {}
        self._dedupe: dict[str, str] = {}
        self._relays: dict[str, datetime] = {}
        self.writes = 0  # tests assert how many writes an operation costs

    async def ensure_indexes(self) -> None:
        """Nothing to create."""

    async def insert(self, doc: Document) -> tuple[Document, bool]:
        """See TaskRepository.insert."""
        existing = self._dedupe.get(doc["dedupe_key"])
        if existing is not None:
            return copy.deepcopy(self.tasks[existing]), False
        self.tasks[doc["_id"]] = copy.deepcopy(doc)
        self._dedupe[doc["dedupe_key"]] = doc["_id"]
        self.writes += 1
        return copy.deepcopy(doc), True

    async def get(self, task_id: str) -> Document | None:
        """See TaskRepository.get."""
        doc = self.tasks.get(task_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def update(self, task_id: str, guard: Guard, change: Change) -> Document | None:
        """See TaskRepository.update."""
        doc = self.tasks.get(task_id)
        if doc is None or not guard.matches(doc):
            return None
        updated = change.apply(doc)
        self.tasks[task_id] = updated
        self.writes += 1
        return copy.deepcopy(updated)

    async def delete(self, task_id: str) -> Document | None:
        """See TaskRepository.delete."""
        doc = self.tasks.pop(task_id, None)
        if doc is not None:
            self._dedupe.pop(doc["dedupe_key"], None)
            self.writes += 1
        return doc

    async def find(self, query: TaskQuery, limit: int, before_id: str = "") -> list[Document]:
        """See TaskRepository.find."""
        out: list[Document] = []
        for task_id in sorted(self.tasks, reverse=True):
            if before_id and not task_id < before_id:
                continue
            doc = self.tasks[task_id]
            if query.matches(doc):
                out.append(copy.deepcopy(doc))
                if len(out) >= limit:
                    break
        return out

    async def beat(self, relay: str, at: datetime) -> None:
        """See TaskRepository.beat."""
        self._relays[relay] = at

    async def relays(self) -> dict[str, datetime]:
        """See TaskRepository.relays."""
        return dict(self._relays)

    async def forget_relay(self, relay: str) -> None:
        """See TaskRepository.forget_relay."""
        self._relays.pop(relay, None)
