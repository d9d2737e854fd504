"""MongoDB access for tasks (pymongo's native async client).

Every state change is one ``find_one_and_update`` whose filter carries the expected state (and
run id), so concurrent workers, retries, sweeps and cancels are compare-and-set: the loser's
update matches nothing and is refused, never applied.

MongoDB applies such a filtered update atomically. FerretDB 1.x on SQLite does not: measured
here, 10 concurrent ``find_one_and_update({"status": "pending"}, ...)`` on one document let about
five "win"; concurrent writers thrash SQLite's lock (32 in parallel: 56 updates/s with a 9.6 s
worst case, against 127/s one at a time); and a filter beyond ``_id`` is slow (28.7 ms with
``status: {$in: [...]}``, 1.2 ms by ``_id`` alone). So on FerretDB this process serialises its
writes and does each compare-and-set as read, check, write-by-``_id`` under that one gate: atomic,
because task-store is the collection's only writer (run one replica on FerretDB), and fast.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from genhub.common.errors import FailedPrecondition, InvalidArgument, NotFound, StoreError
from genhub.common.ids import new_token
from genhub.taskstore import documents, states
from genhub.v1 import task_pb2

MAX_PAGE = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list or search returns."""

    user_id: str = ""
    type: task_pb2.TaskType.ValueType = task_pb2.TASK_TYPE_UNSPECIFIED
    statuses: tuple[task_pb2.TaskStatus.ValueType, ...] = ()
    provider: str = ""
    updated_before: datetime | None = None
    prompt_contains: str = ""


@dataclass(frozen=True)
class Page:
    """One page of tasks and the token of the next."""

    tasks: list[task_pb2.Task]
    next_page_token: str


def encode_page_token(last_id: str) -> str:
    """An opaque token for the page after ``last_id``."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    """The last id of the previous page; InvalidArgument when the token was not ours."""
    try:
        value = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument.one("page_token", "is not a token this API returned") from exc
    if not re.fullmatch(r"[0-9a-z]{26}", value):
        raise InvalidArgument.one("page_token", "is not a token this API returned")
    return value


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


class TaskRepository:
    """Tasks and catalogues in one MongoDB database."""

    def __init__(
        self, client: AsyncMongoClient[dict[str, Any]], database: str, *, serialize_writes: bool
    ) -> None:
        self._client = client
        db = client[database]
        self._tasks: AsyncCollection[dict[str, Any]] = db["tasks"]
        self.providers: AsyncCollection[dict[str, Any]] = db["providers"]
        self._write_gate = asyncio.Lock() if serialize_writes else None

    @classmethod
    async def open(cls, client: AsyncMongoClient[dict[str, Any]], database: str) -> TaskRepository:
        """Connect, detect the server (MongoDB or FerretDB) and create the indexes."""
        try:
            info = await client.admin.command("buildInfo")
        except PyMongoError as exc:
            raise StoreError(f"MongoDB is unreachable: {exc}") from exc
        ferretdb = "ferretdbVersion" in info
        if ferretdb:
            log.info("FerretDB detected: task-store serialises its writes")
        repository = cls(client, database, serialize_writes=ferretdb)
        await repository.ensure_indexes()
        return repository

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold the write gate (a no-op on MongoDB) for the block."""
        if self._write_gate is None:
            yield
            return
        async with self._write_gate:
            yield

    async def ensure_indexes(self) -> None:
        """Create the indexes (idempotent)."""
        try:
            await self._tasks.create_index([("dedupe_key", ASCENDING)], unique=True, name="dedupe")
            await self._tasks.create_index(
                [("user_id", ASCENDING), ("_id", DESCENDING)], name="user_newest"
            )
            await self._tasks.create_index(
                [("status", ASCENDING), ("updated_at", ASCENDING)], name="status_updated"
            )
            await self._tasks.create_index([("created_at", DESCENDING)], name="created")
        except PyMongoError as exc:
            raise StoreError(f"cannot create indexes: {exc}") from exc

    async def insert(self, task: task_pb2.Task) -> tuple[task_pb2.Task, bool]:
        """Store a new pending task; returns the earlier task when its dedupe key exists."""
        doc = documents.to_document(task, documents.now())
        try:
            async with self.writing():
                await self._tasks.insert_one(doc)
        except InvalidDocument as exc:
            # The gateway validates first; this guards the internal API against what BSON refuses.
            raise InvalidArgument.one("task", f"cannot be stored: {exc}") from exc
        except DuplicateKeyError:
            existing = await self._find_one({"dedupe_key": doc["dedupe_key"]})
            if existing is None:  # deleted between the two calls
                raise StoreError("idempotency key conflict; retry") from None
            return documents.from_document(existing), False
        except PyMongoError as exc:
            raise StoreError(f"insert failed: {exc}") from exc
        return documents.from_document(doc), True

    async def get(self, task_id: str) -> tuple[task_pb2.Task, str]:
        """The task and its current run id."""
        doc = await self._find_one({"_id": task_id})
        if doc is None:
            raise NotFound(f"task {task_id} not found", metadata={"task_id": task_id})
        return documents.from_document(doc), str(doc.get("run_id", ""))

    async def list_tasks(self, flt: TaskFilter, page_size: int, page_token: str) -> Page:
        """Tasks matching ``flt``, newest first, one page."""
        query = self._query(flt)
        if page_token:
            query["_id"] = {"$lt": decode_page_token(page_token)}
        size = min(max(page_size, 1), MAX_PAGE)
        try:
            cursor = self._tasks.find(query).sort("_id", DESCENDING).limit(size + 1)
            docs = await cursor.to_list()
        except PyMongoError as exc:
            raise StoreError(f"list failed: {exc}") from exc
        more = len(docs) > size
        docs = docs[:size]
        token = encode_page_token(docs[-1]["_id"]) if more and docs else ""
        return Page([documents.from_document(d) for d in docs], token)

    def _query(self, flt: TaskFilter) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if flt.user_id:
            query["user_id"] = flt.user_id
        if flt.type:
            query["type"] = documents.TYPE_NAMES[flt.type]
        if flt.statuses:
            query["status"] = {"$in": [states.name(s) for s in flt.statuses]}
        if flt.provider:
            query["provider"] = flt.provider
        if flt.updated_before is not None:
            query["updated_at"] = {"$lt": flt.updated_before}
        if flt.prompt_contains:
            # Escaped: user text is matched literally; "(" or ".*" cannot become a pattern.
            query["prompt"] = {"$regex": literal_pattern(flt.prompt_contains), "$options": "i"}
        return query

    async def transition(
        self,
        task_id: str,
        from_statuses: list[task_pb2.TaskStatus.ValueType],
        to_status: task_pb2.TaskStatus.ValueType,
        *,
        expected_run_id: str = "",
        start_run: bool = False,
        error: task_pb2.TaskError | None = None,
        provider_job_id: str = "",
        clear_provider_job_id: bool = False,
    ) -> tuple[task_pb2.Task, str]:
        """Apply a legal transition if the task is in one of ``from_statuses``."""
        if not from_statuses:
            raise InvalidArgument.one("from_statuses", "must name at least one status")
        for source in from_statuses:
            if not states.is_legal(source, to_status):
                raise FailedPrecondition(
                    f"illegal transition {states.name(source)} -> {states.name(to_status)}",
                    reason="ILLEGAL_TRANSITION",
                )
        at = documents.now()
        fields: dict[str, Any] = {"status": states.name(to_status), "updated_at": at}
        update: dict[str, Any] = {"$set": fields}
        run_id = ""
        if start_run:
            run_id = new_token()
            fields.update(run_id=run_id, started_at=at)
            update["$inc"] = {"attempts": 1}
        elif to_status != task_pb2.TASK_STATUS_RUNNING:
            fields["run_id"] = ""  # a stale run can no longer record a result
        if to_status in states.TERMINAL:
            fields["finished_at"] = at
        if error is not None:
            fields["error"] = documents.as_dict(error)
        if provider_job_id:
            fields["provider_job_id"] = provider_job_id
        elif clear_provider_job_id:
            fields["provider_job_id"] = ""
        doc = await self._compare_and_set(
            task_id, [states.name(s) for s in from_statuses], expected_run_id, update
        )
        if doc is None:
            await self._refuse(task_id, from_statuses, expected_run_id)
        assert doc is not None
        return documents.from_document(doc), str(doc.get("run_id", ""))

    async def record_result(
        self, task_id: str, run_id: str, result: task_pb2.TaskResult, usage: task_pb2.Usage
    ) -> task_pb2.Task:
        """Finish a running task with its result, if ``run_id`` is still its run."""
        at = documents.now()
        doc = await self._record(task_id, run_id, result, usage, at)
        if doc is None:
            await self._refuse(task_id, [task_pb2.TASK_STATUS_RUNNING], run_id)
        assert doc is not None
        return documents.from_document(doc)

    async def _record(
        self,
        task_id: str,
        run_id: str,
        result: task_pb2.TaskResult,
        usage: task_pb2.Usage,
        at: datetime,
    ) -> dict[str, Any] | None:
        return await self._compare_and_set(
            task_id,
            ["running"],
            run_id,
            {
                "$set": {
                    "status": "succeeded",
                    "result": documents.as_dict(result),
                    "usage": documents.as_dict(usage),
                    "error": None,
                    "run_id": "",
                    "updated_at": at,
                    "finished_at": at,
                }
            },
        )

    async def delete(self, task_id: str) -> None:
        """Remove a task; NotFound when there is none."""
        try:
            async with self.writing():
                outcome = await self._tasks.delete_one({"_id": task_id})
        except PyMongoError as exc:
            raise StoreError(f"delete failed: {exc}") from exc
        if outcome.deleted_count == 0:
            raise NotFound(f"task {task_id} not found", metadata={"task_id": task_id})

    async def _refuse(
        self, task_id: str, expected: list[task_pb2.TaskStatus.ValueType], run_id: str
    ) -> None:
        current = await self._find_one({"_id": task_id})
        if current is None:
            raise NotFound(f"task {task_id} not found", metadata={"task_id": task_id})
        status = current["status"]
        wanted = "|".join(states.name(s) for s in expected)
        if states.BY_NAME[status] in expected and run_id:
            raise FailedPrecondition(
                f"task {task_id} belongs to another run",
                reason="RUN_MISMATCH",
                metadata={"status": status},
            )
        raise FailedPrecondition(
            f"task {task_id} is {status}, not {wanted}",
            reason="STATUS_MISMATCH",
            metadata={"status": status},
        )

    async def _compare_and_set(
        self, task_id: str, statuses: list[str], run_id: str, update: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Apply ``update`` if the task is in one of ``statuses`` (and run ``run_id``, if given);
        returns the updated document, or None when the guard did not hold."""
        try:
            if self._write_gate is None:
                query: dict[str, Any] = {"_id": task_id, "status": {"$in": statuses}}
                if run_id:
                    query["run_id"] = run_id
                return await self._tasks.find_one_and_update(
                    query, update, return_document=ReturnDocument.AFTER
                )
            async with self._write_gate:
                current = await self._tasks.find_one({"_id": task_id})
                if current is None or current.get("status") not in statuses:
                    return None
                if run_id and current.get("run_id") != run_id:
                    return None
                return await self._tasks.find_one_and_update(
                    {"_id": task_id}, update, return_document=ReturnDocument.AFTER
                )
        except PyMongoError as exc:
            raise StoreError(f"update failed: {exc}") from exc

    async def _find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self._tasks.find_one(query)
        except PyMongoError as exc:
            raise StoreError(f"read failed: {exc}") from exc
