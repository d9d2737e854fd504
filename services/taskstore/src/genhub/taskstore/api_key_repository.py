"""MongoDB access for API keys: the ``api_keys`` collection.

One document per key::

    {_id: key_id, prefix, user_id, role, display_name, key_hash, created_at, revoked_at?}

``key_hash`` is the gateway's HMAC of the whole key (task-store never sees a secret); a unique
index on it makes a lookup one indexed read on MongoDB. Revoking sets ``revoked_at`` and keeps
the document for audit (AIP-164 soft delete); a revoked key never authenticates again. Writes go
through task-store's one write gate (see ``repository.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, PyMongoError

from genhub.common.errors import AlreadyExists, InvalidArgument, NotFound, StoreError
from genhub.store.v1 import api_key_store_pb2
from genhub.taskstore import documents
from genhub.taskstore.mongo import Collection
from genhub.v1 import api_key_service_pb2

ApiKey = api_key_service_pb2.ApiKey
HASH_INDEX = "key_hash_unique"
MAX_PAGE_SIZE = 500


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def from_document(doc: dict[str, Any]) -> api_key_service_pb2.ApiKey:
    """The API view of a stored key (no hash)."""
    key = ApiKey(
        key_id=doc["_id"],
        prefix=doc.get("prefix", ""),
        user_id=doc.get("user_id", ""),
        role=api_key_service_pb2.Role.Value(doc.get("role", "ROLE_USER")),
        display_name=doc.get("display_name", ""),
    )
    if doc.get("created_at") is not None:
        key.create_time.CopyFrom(_timestamp(doc["created_at"]))
    if doc.get("revoked_at") is not None:
        key.revoke_time.CopyFrom(_timestamp(doc["revoked_at"]))
    return key


def _not_found(key_id: str) -> NotFound:
    return NotFound(f"API key {key_id[:64]} not found", reason="API_KEY_NOT_FOUND")


class ApiKeyRepository:
    """API keys in one MongoDB database."""

    def __init__(self, collection: Collection) -> None:
        self._keys = collection

    async def ensure_indexes(self) -> None:
        """Create the unique hash index (idempotent)."""
        try:
            await self._keys.raw.create_index(
                [("key_hash", ASCENDING)], unique=True, name=HASH_INDEX
            )
        except PyMongoError as exc:
            raise StoreError(f"cannot create API key indexes: {exc}") from exc

    async def create(self, stored: api_key_store_pb2.StoredApiKey) -> api_key_service_pb2.ApiKey:
        """Store a new key; AlreadyExists when its id or hash is taken."""
        key = stored.api_key
        if not key.key_id or not stored.key_hash or not key.user_id:
            raise InvalidArgument.one("stored", "key_id, key_hash and api_key.user_id are required")
        doc = {
            "_id": key.key_id,
            "prefix": key.prefix,
            "user_id": key.user_id,
            "role": api_key_service_pb2.Role.Name(key.role or api_key_service_pb2.ROLE_USER),
            "display_name": key.display_name,
            "key_hash": stored.key_hash,
            "created_at": documents.now(),
        }
        try:
            await self._keys.insert_one(doc)
        except DuplicateKeyError:
            raise AlreadyExists("API key id or hash taken", reason="API_KEY_EXISTS") from None
        except PyMongoError as exc:
            raise StoreError(f"insert API key failed: {exc}") from exc
        return from_document(doc)

    async def get(self, key_id: str) -> api_key_service_pb2.ApiKey:
        """A key by id, revoked or not."""
        doc = await self._find_one({"_id": key_id})
        if doc is None:
            raise _not_found(key_id)
        return from_document(doc)

    async def lookup(self, key_hash: str) -> api_key_service_pb2.ApiKey:
        """The live key with ``key_hash``; NotFound when none (or revoked)."""
        doc = await self._find_one({"key_hash": key_hash})
        if doc is None or doc.get("revoked_at") is not None:
            raise NotFound("no live API key has this hash", reason="API_KEY_NOT_FOUND")
        return from_document(doc)

    async def list(
        self, user_id: str, show_revoked: bool, page_size: int, page_token: str
    ) -> tuple[list[api_key_service_pb2.ApiKey], str]:
        """A page of keys by id, and the next page's token (the last id; empty at the end)."""
        query: dict[str, Any] = {}
        if user_id:
            query["user_id"] = user_id
        if not show_revoked:
            query["revoked_at"] = None
        if page_token:
            query["_id"] = {"$gt": page_token}
        size = min(page_size or 50, MAX_PAGE_SIZE)
        try:
            cursor = self._keys.find(query).sort("_id", ASCENDING).limit(size + 1)
            docs = await cursor.to_list()
        except PyMongoError as exc:
            raise StoreError(f"list API keys failed: {exc}") from exc
        more = len(docs) > size
        docs = docs[:size]
        return [from_document(d) for d in docs], (docs[-1]["_id"] if more else "")

    async def revoke(self, key_id: str) -> api_key_service_pb2.ApiKey:
        """Mark a live key revoked; NotFound when none or already revoked."""
        try:
            doc = await self._keys.find_one_and_update(
                {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": documents.now()}}
            )
        except PyMongoError as exc:
            raise StoreError(f"revoke API key failed: {exc}") from exc
        if doc is None:
            raise _not_found(key_id)
        return from_document(doc)

    async def _find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self._keys.find_one(query)
        except PyMongoError as exc:
            raise StoreError(f"read API key failed: {exc}") from exc
