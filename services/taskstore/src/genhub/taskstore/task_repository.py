"""The seam between task-store's lifecycle and its database: the TaskRepository protocol.

Two implementations pass one contract suite (``tests/contract/test_task_repository.py``):
``MongoTaskRepository`` (MongoDB, and FerretDB through the write gate) and
``MemoryTaskRepository`` (an in-process twin for fast tests of lifecycle policy).

Documents are plain dicts laid out as ``documents.py`` says; task ids are time-ordered, so
"newest first" is descending ``_id`` and a page token is the last id of a page.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from genhub.common.errors import InvalidArgument
from genhub.taskstore.lifecycle import Change, Guard

Document = dict[str, Any]
MAX_PAGE = 1000


@dataclass(frozen=True)
class TaskQuery:
    """Which tasks a list, search or sweep returns (every set field must match)."""

    user_id: str = ""
    type: str = ""  # stored type name: "image", "video", "text"
    statuses: tuple[str, ...] = ()
    provider: str = ""
    prompt_contains: str = ""  # literal, case-insensitive
    lease_lapsed_at: datetime | None = None  # lease_until before this
    updated_before: datetime | None = None
    outbox: str = ""  # stamped by this relay

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Whether ``doc`` is selected (the twin's query engine)."""
        if self.user_id and doc.get("user_id") != self.user_id:
            return False
        if self.type and doc.get("type") != self.type:
            return False
        if self.statuses and doc.get("status") not in self.statuses:
            return False
        if self.provider and doc.get("provider") != self.provider:
            return False
        if self.prompt_contains and (
            self.prompt_contains.lower() not in str(doc.get("prompt", "")).lower()
        ):
            return False
        if self.lease_lapsed_at is not None:
            lease = doc.get("lease_until")
            if lease is None or not lease < self.lease_lapsed_at:
                return False
        if self.updated_before is not None:
            updated = doc.get("updated_at")
            if updated is None or not updated < self.updated_before:
                return False
        return not (self.outbox and doc.get("outbox") != self.outbox)


class TaskRepository(Protocol):
    """Task documents and the outbox relays' heartbeats. Raises StoreError when the database
    is unreachable."""

    async def ensure_indexes(self) -> None:
        """Create the indexes every hot query needs (idempotent)."""
        ...

    async def insert(self, doc: Document) -> tuple[Document, bool]:
        """Store a new task; when its ``dedupe_key`` exists, return that task and False."""
        ...

    async def get(self, task_id: str) -> Document | None:
        """A task by id, or None."""
        ...

    async def update(self, task_id: str, guard: Guard, change: Change) -> Document | None:
        """Compare-and-set: apply ``change`` if the task satisfies ``guard``; the updated
        document, or None when the guard did not hold or the task does not exist."""
        ...

    async def delete(self, task_id: str) -> Document | None:
        """Remove a task; the removed document, or None when there was none."""
        ...

    async def find(self, query: TaskQuery, limit: int, before_id: str = "") -> list[Document]:
        """At most ``limit`` matching tasks with ids below ``before_id`` (if set), newest first."""
        ...

    async def beat(self, relay: str, at: datetime) -> None:
        """Record that outbox relay ``relay`` is alive at ``at``."""
        ...

    async def relays(self) -> dict[str, datetime]:
        """Every relay's last heartbeat."""
        ...

    async def forget_relay(self, relay: str) -> None:
        """Remove a relay's heartbeat (it stopped cleanly, or was adopted)."""
        ...


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


def page_size(requested: int) -> int:
    """A page size within [1, MAX_PAGE]."""
    return min(max(requested, 1), MAX_PAGE)
