"""The delivery log: one document per delivery attempt, in the notifier's own collection
``webhook_deliveries`` (MongoDB; FerretDB in development). Insert-by-id only, so it needs no
atomic filtered update (FerretDB has none) and a redelivered attempt overwrites itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient

COLLECTION = "webhook_deliveries"


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt. ``outcome``: ``delivered`` (2xx), ``retrying`` (a retry is
    queued for ``next_attempt_at``), ``failed`` (retries used up) or ``refused`` (the URL breaks
    the egress rules; not retried). ``url`` is stored without its query string."""

    event_id: str
    task_id: str
    attempt: int  # 1-based
    url: str
    event_type: str
    outcome: str
    status_code: int  # 0 when no HTTP answer
    error: str
    started_at: datetime
    duration_ms: float
    next_attempt_at: datetime | None = None


class DeliveryLog:
    """Reads and writes the delivery log in database ``database``."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._collection = client[database][COLLECTION]

    async def ensure_indexes(self) -> None:
        """The per-task index (a scan on FerretDB, an index scan on MongoDB)."""
        await self._collection.create_index([("task_id", ASCENDING), ("started_at", ASCENDING)])

    async def record(self, attempt: Attempt) -> None:
        """Store an attempt (idempotent per event and attempt number)."""
        doc = {"_id": f"{attempt.event_id}:{attempt.attempt}", **asdict(attempt)}
        await self._collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def for_task(self, task_id: str) -> list[Attempt]:
        """Every attempt for ``task_id``'s events, oldest first."""
        cursor = self._collection.find({"task_id": task_id}).sort("started_at", ASCENDING)
        fields = Attempt.__dataclass_fields__
        return [Attempt(**{k: v for k, v in doc.items() if k in fields}) async for doc in cursor]
