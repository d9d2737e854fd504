"""MongoDB access for users: the ``users`` collection.

A user's document keeps the email as given (trimmed) and, in ``email_key``, the same address
trimmed and lower-cased; a unique index on ``email_key`` makes emails unique case-insensitively,
so two concurrent creates (or an update racing a create) with one address cannot both succeed:
the loser gets a duplicate-key error, answered as ALREADY_EXISTS.

Ids come from ``genhub.common.ids.new_id()`` (48 bits of milliseconds and 80 random bits), so a
deleted user's id is never handed out again. Deleting a user leaves their tasks alone.

On FerretDB every write passes task-store's write gate (``mongo.py``): concurrent writers
thrash SQLite's lock, and FerretDB reports a unique-index conflict on an update as a generic
error rather than a duplicate key. So an email change first looks for another owner of the
address while holding the gate (exact, because task-store is the collection's only writer; run
one replica on FerretDB); on MongoDB the gate is a no-op and the unique index settles a race
that slips past the look-up. Every other write is one operation by ``_id``, or an
insert, which both servers refuse with a duplicate-key error when the email is taken.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, PyMongoError

from genhub.common.errors import AlreadyExists, InvalidArgument, NotFound, StoreError
from genhub.common.ids import new_id
from genhub.taskstore import documents
from genhub.taskstore.mongo import Collection
from genhub.v1 import user_service_pb2

User = user_service_pb2.User
WRITABLE_FIELDS = ("email", "display_name")
EMAIL_INDEX = "email_unique"
log = logging.getLogger(__name__)


def email_key(email: str) -> str:
    """The form emails are compared in: trimmed and lower-cased."""
    return email.strip().lower()


def update_paths(paths: Sequence[str]) -> list[str]:
    """The fields an update mask names (every writable field when empty), deduplicated;
    InvalidArgument naming ``update_mask`` for any other path."""
    if not paths:
        return list(WRITABLE_FIELDS)
    unknown = [p for p in paths if p not in WRITABLE_FIELDS]
    if unknown:
        raise InvalidArgument.one(
            "update_mask",
            f"unknown or read-only path {unknown[0]!r}; allowed: {', '.join(WRITABLE_FIELDS)}",
        )
    return [f for f in WRITABLE_FIELDS if f in paths]


def _taken(email: str) -> AlreadyExists:
    return AlreadyExists(
        f"a user with email {email!r} already exists",
        reason="EMAIL_TAKEN",
        metadata={"field": "email"},
    )


def _not_found(user_id: str) -> NotFound:
    return NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def from_document(doc: dict[str, Any]) -> user_service_pb2.User:
    """The API view of a stored user."""
    user = User(
        user_id=doc["_id"],
        email=doc.get("email", ""),
        display_name=doc.get("display_name", ""),
    )
    if doc.get("created_at") is not None:
        user.create_time.CopyFrom(_timestamp(doc["created_at"]))
    if doc.get("updated_at") is not None:
        user.update_time.CopyFrom(_timestamp(doc["updated_at"]))
    return user


class UserRepository:
    """Users in one MongoDB database."""

    def __init__(self, collection: Collection) -> None:
        self._users = collection

    async def ensure_indexes(self) -> None:
        """Create the unique email index (idempotent)."""
        try:
            await self._users.raw.create_index(
                [("email_key", ASCENDING)], unique=True, name=EMAIL_INDEX
            )
        except PyMongoError as exc:
            raise StoreError(f"cannot create user indexes: {exc}") from exc

    async def create(self, user: user_service_pb2.User) -> user_service_pb2.User:
        """Store a new user with a fresh id; AlreadyExists when the email is taken."""
        email = user.email.strip()
        if not email:
            raise InvalidArgument.one("user.email", "is required")
        at = documents.now()
        doc = {
            "_id": new_id(),
            "email": email,
            "email_key": email_key(email),
            "display_name": user.display_name,
            "created_at": at,
            "updated_at": at,
        }
        try:
            await self._users.insert_one(doc)
        except DuplicateKeyError:
            raise _taken(email) from None
        except PyMongoError as exc:
            raise StoreError(f"insert user failed: {exc}") from exc
        return from_document(doc)

    async def get(self, user_id: str) -> user_service_pb2.User:
        """The user with ``user_id``; NotFound when there is none."""
        doc = await self._find_one({"_id": user_id})
        if doc is None:
            raise _not_found(user_id)
        return from_document(doc)

    async def find_by_email(self, email: str) -> user_service_pb2.User:
        """The user with ``email`` (trimmed, any case); NotFound when there is none."""
        doc = await self._find_one({"email_key": email_key(email)})
        if doc is None:
            raise NotFound("no user has this email address", reason="USER_NOT_FOUND")
        return from_document(doc)

    async def update(
        self, user: user_service_pb2.User, paths: Sequence[str]
    ) -> user_service_pb2.User:
        """Set the fields ``paths`` names (see ``update_paths``) from ``user``. Only a real
        change is written and moves ``update_time``: a repeated update answers the same user."""
        wanted: dict[str, Any] = {}
        for path in update_paths(paths):
            if path == "email":
                email = user.email.strip()
                if not email:
                    raise InvalidArgument.one("user.email", "is required")
                wanted.update(email=email, email_key=email_key(email))
            else:
                wanted["display_name"] = user.display_name
        try:
            async with self._users.exclusive():
                current = await self._users.find_one({"_id": user.user_id})
                if current is None:
                    raise _not_found(user.user_id)
                changes = {k: v for k, v in wanted.items() if current.get(k) != v}
                if not changes:
                    return from_document(current)
                if "email_key" in changes:
                    # FerretDB reports a unique-index conflict on an update as a generic
                    # error, not a duplicate key: look for another owner first (exact under
                    # the write gate). On MongoDB the index settles a race (DuplicateKeyError).
                    owner = await self._users.find_one(
                        {"email_key": changes["email_key"]}, projection={"_id": 1}
                    )
                    if owner is not None:
                        raise _taken(changes["email"])
                changes["updated_at"] = documents.now()
                doc = await self._users.find_one_and_update(
                    {"_id": user.user_id}, {"$set": changes}
                )
        except DuplicateKeyError:
            raise _taken(wanted["email"]) from None
        except PyMongoError as exc:
            raise StoreError(f"update user failed: {exc}") from exc
        if doc is None:  # deleted since the read
            raise _not_found(user.user_id)
        return from_document(doc)

    async def delete(self, user_id: str) -> None:
        """Remove a user (their tasks stay); NotFound when there is none."""
        try:
            deleted = await self._users.delete_one({"_id": user_id})
        except PyMongoError as exc:
            raise StoreError(f"delete user failed: {exc}") from exc
        if deleted is None:
            raise _not_found(user_id)

    async def _find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self._users.find_one(query)
        except PyMongoError as exc:
            raise StoreError(f"read user failed: {exc}") from exc
