"""Client of the internal ApiKeyStoreService (served by task-store), with gRPC failures mapped
back into GenHub errors."""

from __future__ import annotations

import grpc

from genhub.common.store_client import call
from genhub.store.v1 import api_key_store_pb2 as pb
from genhub.store.v1 import api_key_store_pb2_grpc
from genhub.v1 import api_key_service_pb2

ApiKey = api_key_service_pb2.ApiKey


class ApiKeyStoreClient:
    """Typed calls to the API key store; failures raise GenHub errors (NotFound, AlreadyExists,
    InvalidArgument, StoreError)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = api_key_store_pb2_grpc.ApiKeyStoreServiceStub(channel)

    async def create(self, key: ApiKey, key_hash: str) -> ApiKey:
        """Store a key with the hash of its secret."""
        stored = pb.StoredApiKey(api_key=key, key_hash=key_hash)
        return (await call(self._stub.CreateApiKey, pb.CreateApiKeyRequest(stored=stored))).api_key

    async def get(self, key_id: str) -> ApiKey:
        """A key by id (revoked ones too)."""
        return (await call(self._stub.GetApiKey, pb.GetApiKeyRequest(key_id=key_id))).api_key

    async def lookup(self, key_hash: str) -> ApiKey:
        """The live key with ``key_hash``; NotFound when none."""
        request = pb.LookupApiKeyRequest(key_hash=key_hash)
        return (await call(self._stub.LookupApiKey, request)).api_key

    async def list(
        self, user_id: str, show_revoked: bool, page_size: int, page_token: str
    ) -> tuple[list[ApiKey], str]:
        """A page of keys and the store's next-page token."""
        request = pb.ListApiKeysRequest(
            user_id=user_id, show_revoked=show_revoked, page_size=page_size, page_token=page_token
        )
        resp = await call(self._stub.ListApiKeys, request)
        return list(resp.api_keys), resp.next_page_token

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a live key; NotFound when none."""
        request = pb.RevokeApiKeyRequest(key_id=key_id)
        return (await call(self._stub.RevokeApiKey, request)).api_key
