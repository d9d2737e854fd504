"""TaskRepository on MongoDB (pymongo's native async client), and on FerretDB through the
write gate of ``mongo.py``.

Hot-path queries (insert, get, every lifecycle compare-and-set) go by ``_id`` alone plus the
guard, which MongoDB answers from the ``_id`` index and FerretDB pushes down to SQLite. Lists,
searches and sweeps use the secondary indexes created here on MongoDB; FerretDB scans for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError, PyMongoError

from genhub.common.errors import InvalidArgument, StoreError
from genhub.taskstore.lifecycle import Change, Guard
from genhub.taskstore.mongo import Collection, Database, Document
from genhub.taskstore.states import TERMINAL_NAMES
from genhub.taskstore.task_repository import TaskQuery


def literal_pattern(text: str) -> str:
    """A regular expression that matches ``text`` literally, read the same by MongoDB (PCRE) and
    FerretDB (Go regexp): ASCII punctuation is backslash-escaped, control characters are written
    ``\\xHH`` (MongoDB refuses a raw NUL in a pattern), and everything else (letters, digits,
    spaces, CJK, emoji) stands for itself. Both engines take ``\\`` + punctuation as that
    character. The result has no repetition or alternation, so no input can make it slow."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x80 and not char.isalnum() and char != " ":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def to_filter(query: TaskQuery) -> dict[str, Any]:
    """A TaskQuery as a MongoDB filter."""
    flt: dict[str, Any] = {}
    if query.user_id:
        flt["user_id"] = query.user_id
    if query.type:
        flt["type"] = query.type
    if query.statuses:
        flt["status"] = {"$in": list(query.statuses)}
    if query.provider:
        flt["provider"] = query.provider
    if query.prompt_contains:
        # Escaped: user text is matched literally; "(" or ".*" cannot become a pattern.
        flt["prompt"] = {"$regex": literal_pattern(query.prompt_contains), "$options": "i"}
    if query.lease_lapsed_at is not None:
        flt["lease_until"] = {"$lt": query.lease_lapsed_at}
    if query.updated_before is not None:
        flt["updated_at"] = {"$lt": query.updated_before}
    if query.outbox:
        flt["outbox"] = query.outbox
    return flt


# Secondary indexes for MongoDB's list, search and reaper queries (not created on FerretDB).
QUERY_INDEXES = frozenset({"user_newest", "status_updated", "status_lease", "outbox"})


class MongoTaskRepository:
    """Tasks in the ``tasks`` collection, relay heartbeats in ``relays``."""

    def __init__(self, database: Database) -> None:
        self._query_indexes = not database.ferretdb
        self._tasks: Collection = database.collection(
            "tasks", settled=lambda doc: doc.get("status") in TERMINAL_NAMES
        )
        self._relays: Collection = database.collection("relays")

    async def ensure_indexes(self) -> None:
        """See TaskRepository.ensure_indexes. On FerretDB only the unique index is created: it
        does not use the others for queries (it scans), so they would only slow every write."""
        raw = self._tasks.raw
        try:
            await raw.create_index([("dedupe_key", ASCENDING)], unique=True, name="dedupe")
            if not self._query_indexes:
                # Databases created by earlier versions have them: drop them.
                existing = set(await raw.index_information())
                for name in QUERY_INDEXES & existing:
                    await raw.drop_index(name)
                return
            await raw.create_index(
                [("user_id", ASCENDING), ("_id", DESCENDING)], name="user_newest"
            )
            await raw.create_index(
                [("status", ASCENDING), ("updated_at", ASCENDING)], name="status_updated"
            )
            await raw.create_index(
                [("status", ASCENDING), ("lease_until", ASCENDING)], name="status_lease"
            )
            await raw.create_index([("outbox", ASCENDING)], name="outbox")
        except PyMongoError as exc:
            raise StoreError(f"cannot create indexes: {exc}") from exc

    async def insert(self, doc: Document) -> tuple[Document, bool]:
        """See TaskRepository.insert."""
        try:
            await self._tasks.insert_one(doc)
        except InvalidDocument as exc:
            # The gateway validates first; this guards the internal API against what BSON refuses.
            raise InvalidArgument.one("task", f"cannot be stored: {exc}") from exc
        except DuplicateKeyError:
            existing = await self._tasks.find_one({"dedupe_key": doc["dedupe_key"]})
            if existing is None:  # deleted between the two calls
                raise StoreError("idempotency key conflict; retry") from None
            return existing, False
        except PyMongoError as exc:
            raise StoreError(f"insert failed: {exc}") from exc
        return doc, True

    async def get(self, task_id: str) -> Document | None:
        """See TaskRepository.get."""
        return await self._tasks.find_one({"_id": task_id})

    async def update(self, task_id: str, guard: Guard, change: Change) -> Document | None:
        """See TaskRepository.update."""
        return await self._tasks.update_if(
            task_id, guard.to_filter(), guard.matches, change.to_update()
        )

    async def delete(self, task_id: str) -> Document | None:
        """See TaskRepository.delete."""
        return await self._tasks.delete_one({"_id": task_id})

    async def find(self, query: TaskQuery, limit: int, before_id: str = "") -> list[Document]:
        """See TaskRepository.find."""
        flt = to_filter(query)
        if before_id:
            flt["_id"] = {"$lt": before_id}
        try:
            return await self._tasks.find(flt).sort("_id", DESCENDING).limit(limit).to_list()
        except PyMongoError as exc:
            raise StoreError(f"list failed: {exc}") from exc

    async def beat(self, relay: str, at: datetime) -> None:
        """See TaskRepository.beat."""
        try:
            await self._relays.find_one_and_update(
                {"_id": relay}, {"$set": {"seen_at": at}}, upsert=True
            )
        except PyMongoError as exc:
            raise StoreError(f"relay heartbeat failed: {exc}") from exc

    async def relays(self) -> dict[str, datetime]:
        """See TaskRepository.relays."""
        try:
            docs = await self._relays.find({}).to_list()
        except PyMongoError as exc:
            raise StoreError(f"relay list failed: {exc}") from exc
        return {d["_id"]: d["seen_at"] for d in docs}

    async def forget_relay(self, relay: str) -> None:
        """See TaskRepository.forget_relay."""
        await self._relays.delete_one({"_id": relay})
