"""task-store's MongoDB database, with the one write gate FerretDB needs.

MongoDB applies a filtered update (``find_one_and_update({"_id": id, "status": ...})``)
atomically, so a compare-and-set is one call and several task-store replicas are safe.
FerretDB 1.x does not: measured here, 20 concurrent conditional updates of one document let a
median of 4-5 "win" on its SQLite and PostgreSQL backends; concurrent writers also thrash
SQLite's lock; and a filter beyond ``_id`` is evaluated by scanning. So when the server is
FerretDB (detected from ``buildInfo``), this module serialises every write of the process behind
one lock and does each compare-and-set as read-by-``_id``, check, write-by-``_id`` under it:
atomic because task-store is the database's only writer (run one replica on FerretDB), and fast.

Because the gated process is the only writer, it also keeps the documents it last wrote (a
bounded write-through cache, gated mode only): a compare-and-set checks its guard against that
copy and skips the read, so a claim or a completion costs FerretDB one operation instead of
two. A write that fails evicts its document, so the cache can only be missing, never stale.

This is the only place that knows about the gate: repositories call :meth:`Collection.update_if`
for a compare-and-set and :meth:`Collection.exclusive` around a read-modify-write, whatever the
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import PyMongoError

from genhub.common.errors import StoreError
from genhub.common.metrics import STORE_WRITES

log = logging.getLogger(__name__)
Document = dict[str, Any]
WRITES = STORE_WRITES
# Documents a gated collection remembers (2-4 KB each as dicts): the tasks in flight (created,
# not yet finished), up to this many; beyond it the oldest cost a read again.
CACHE_SIZE = 20_000
# Set while this asyncio task holds the gate, so a write inside ``exclusive()`` does not wait
# for itself (asyncio.Lock is not re-entrant).
_holding: contextvars.ContextVar[bool] = contextvars.ContextVar("genhub_gate_held", default=False)


class Database:
    """One MongoDB database; ``gated`` when every write must pass the write gate."""

    def __init__(
        self, client: AsyncMongoClient[Document], name: str, *, gated: bool, ferretdb: bool = False
    ) -> None:
        self.client = client
        self.name = name
        self.gated = gated
        # FerretDB evaluates every filter but ``_id`` by scanning, so a secondary index only
        # costs it on each write (measured: updates ~35% dearer with the four task indexes).
        self.ferretdb = ferretdb
        self._db = client[name]
        self._gate = asyncio.Lock()

    @classmethod
    async def open(
        cls, client: AsyncMongoClient[Document], name: str, *, gated: bool | None = None
    ) -> Database:
        """Connect and detect the server: gated on FerretDB unless ``gated`` says otherwise
        (tests force it off to exercise the MongoDB path, one operation at a time)."""
        try:
            info = await client.admin.command("buildInfo")
        except PyMongoError as exc:
            raise StoreError(f"MongoDB is unreachable: {exc}") from exc
        ferretdb = "ferretdbVersion" in info
        if gated is None:
            gated = ferretdb
        if gated:
            log.info("FerretDB detected: task-store serialises its writes")
        return cls(client, name, gated=gated, ferretdb=ferretdb)

    def collection(
        self, name: str, *, settled: Callable[[Document], bool] | None = None
    ) -> Collection:
        """A collection of this database, its writes behind the gate. ``settled(doc)`` says a
        document is unlikely to be written again (a finished task): the cache drops it."""
        return Collection(self, self._db[name], settled=settled)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the gate (a no-op when not gated, or when this task holds it already)."""
        if not self.gated or _holding.get():
            yield
            return
        async with self._gate:
            token = _holding.set(True)
            try:
                yield
            finally:
                _holding.reset(token)


class Collection:
    """A collection whose writes pass the database's write gate; errors become StoreError."""

    def __init__(
        self,
        database: Database,
        raw: AsyncCollection[Document],
        *,
        settled: Callable[[Document], bool] | None = None,
    ) -> None:
        self._database = database
        self.raw = raw  # for index creation and reads
        self._writes = WRITES.labels(raw.name)
        self._written: OrderedDict[object, Document] = OrderedDict()
        self._settled = settled

    def _remember(self, doc: Document | None, doc_id: object = None) -> None:
        """Keep the document this process just wrote (gated only); forget ``doc_id`` if none,
        or if the document is settled: the cache then holds the documents still in flight
        rather than filling up with finished ones (``make soak`` saw it grow by ~4 KB a task)."""
        if not self._database.gated:
            return
        if doc is None or (self._settled is not None and self._settled(doc)):
            self._written.pop(doc_id if doc is None else doc["_id"], None)
            return
        # A shallow copy: writes replace whole fields ($set), never mutate nested values.
        self._written[doc["_id"]] = dict(doc)
        self._written.move_to_end(doc["_id"])
        if len(self._written) > CACHE_SIZE:
            self._written.popitem(last=False)

    @property
    def remembered(self) -> int:
        """How many documents the write-through cache holds (0 when not gated)."""
        return len(self._written)

    def _last_written(self, doc_id: object) -> Document | None:
        doc = self._written.get(doc_id)
        return dict(doc) if doc is not None else None

    def exclusive(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the write gate around a read-modify-write (see Database.exclusive)."""
        return self._database.exclusive()

    async def find_one(self, query: Mapping[str, Any], **kwargs: Any) -> Document | None:
        """One document, or None."""
        try:
            return await self.raw.find_one(query, **kwargs)
        except PyMongoError as exc:
            raise StoreError(f"read failed: {exc}") from exc

    def find(self, query: Mapping[str, Any], **kwargs: Any) -> AsyncCursor[Document]:
        """A cursor (errors surface when it is read; callers wrap them)."""
        return self.raw.find(query, **kwargs)

    async def insert_one(self, doc: Document) -> None:
        """Insert; DuplicateKeyError passes through for callers that dedupe."""
        async with self.exclusive():
            await self.raw.insert_one(doc)
            self._remember(doc)
        self._writes.inc()

    async def find_one_and_update(
        self, query: Mapping[str, Any], update: Mapping[str, Any], *, upsert: bool = False
    ) -> Document | None:
        """Update one document. Under the gate a query beyond ``_id`` is still exact (one
        writer), but FerretDB scans for it: hot paths use :meth:`update_if` instead."""
        async with self.exclusive():
            try:
                doc = await self.raw.find_one_and_update(
                    query, update, upsert=upsert, return_document=ReturnDocument.AFTER
                )
            except BaseException:
                self._remember(None, query.get("_id"))
                raise
            self._remember(doc, query.get("_id"))
        self._writes.inc()
        return doc

    async def update_if(
        self,
        doc_id: str,
        query: Mapping[str, Any],
        matches: Callable[[Document], bool],
        update: Mapping[str, Any],
    ) -> Document | None:
        """Compare-and-set: apply ``update`` to document ``doc_id`` if it satisfies the guard
        (``query`` for MongoDB, ``matches`` evaluated here under the gate); returns the updated
        document, or None when the guard did not hold or the document does not exist."""
        try:
            if not self._database.gated:
                doc = await self.raw.find_one_and_update(
                    {"_id": doc_id, **query}, update, return_document=ReturnDocument.AFTER
                )
                if doc is not None:
                    self._writes.inc()
                return doc
            async with self.exclusive():
                current = self._last_written(doc_id)
                if current is None:
                    current = await self.raw.find_one({"_id": doc_id})
                if current is None or not matches(current):
                    return None
                try:
                    doc = await self.raw.find_one_and_update(
                        {"_id": doc_id}, update, return_document=ReturnDocument.AFTER
                    )
                except BaseException:
                    self._remember(None, doc_id)
                    raise
                self._remember(doc, doc_id)
            self._writes.inc()
            return doc
        except PyMongoError as exc:
            raise StoreError(f"update failed: {exc}") from exc

    async def delete_one(self, query: Mapping[str, Any]) -> Document | None:
        """Delete one document; returns it, or None when there was none."""
        try:
            async with self.exclusive():
                try:
                    doc = await self.raw.find_one_and_delete(query)
                finally:
                    self._remember(None, query.get("_id"))
                if doc is not None:
                    self._remember(None, doc["_id"])
        except PyMongoError as exc:
            raise StoreError(f"delete failed: {exc}") from exc
        if doc is not None:
            self._writes.inc()
        return doc
