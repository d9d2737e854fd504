"""The internal ApiKeyStoreService RPCs, over the API key repository."""

from __future__ import annotations

from typing import Any

import grpc

from genhub.common.errors import InvalidArgument
from genhub.store.v1 import api_key_store_pb2 as pb
from genhub.store.v1 import api_key_store_pb2_grpc
from genhub.taskstore.api_key_repository import ApiKeyRepository

Context = grpc.aio.ServicerContext[Any, Any]


def _require(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument.one(field, "is required")


class ApiKeyStoreServicer(api_key_store_pb2_grpc.ApiKeyStoreServiceServicer):
    """API keys in MongoDB; the gateway makes keys and hashes, the store keeps them."""

    def __init__(self, repository: ApiKeyRepository) -> None:
        self._repo = repository

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context
    ) -> pb.CreateApiKeyResponse:
        """Store a key; ALREADY_EXISTS when its id or hash is taken."""
        return pb.CreateApiKeyResponse(api_key=await self._repo.create(request.stored))

    async def GetApiKey(
        self, request: pb.GetApiKeyRequest, context: Context
    ) -> pb.GetApiKeyResponse:
        """A key by id."""
        _require("key_id", request.key_id)
        return pb.GetApiKeyResponse(api_key=await self._repo.get(request.key_id))

    async def LookupApiKey(
        self, request: pb.LookupApiKeyRequest, context: Context
    ) -> pb.LookupApiKeyResponse:
        """The live key with a hash."""
        _require("key_hash", request.key_hash)
        return pb.LookupApiKeyResponse(api_key=await self._repo.lookup(request.key_hash))

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Context
    ) -> pb.ListApiKeysResponse:
        """A page of keys."""
        keys, token = await self._repo.list(
            request.user_id, request.show_revoked, request.page_size, request.page_token
        )
        return pb.ListApiKeysResponse(api_keys=keys, next_page_token=token)

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: Context
    ) -> pb.RevokeApiKeyResponse:
        """Revoke a live key."""
        _require("key_id", request.key_id)
        return pb.RevokeApiKeyResponse(api_key=await self._repo.revoke(request.key_id))
