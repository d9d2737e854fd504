"""The public ApiKeyService: issue, read, list and revoke API keys (admin only with auth on).

Rules: ``api_key.user_id`` is required and must name a user of UserService; ``api_key.role``
defaults to ROLE_USER; ``display_name`` follows the user display-name rules. The secret is
returned once, by CreateApiKey, and is never logged; the store gets its keyed hash only.
Key ids are 8 lowercase letters and digits: anything else is NOT_FOUND without a store call.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import grpc

from genhub.common.api_key_store_client import ApiKeyStoreClient
from genhub.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from genhub.common.user_store_client import UserStoreClient
from genhub.gateway import auth
from genhub.gateway.page_tokens import PageTokens
from genhub.gateway.users import check_display_name
from genhub.gateway.validation import Violations
from genhub.v1 import api_key_service_pb2 as pb
from genhub.v1 import api_key_service_pb2_grpc

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
_KEY_ID = re.compile(r"[a-z0-9]{8}")
MAX_PAGE_SIZE = 500
CREATE_ATTEMPTS = 3


def _require_key_id(key_id: str) -> None:
    if not key_id:
        raise InvalidArgument.one("key_id", "is required")
    if not _KEY_ID.fullmatch(key_id):
        raise NotFound(f"API key {key_id[:64]} not found", reason="API_KEY_NOT_FOUND")


class ApiKeyServicer(api_key_service_pb2_grpc.ApiKeyServiceServicer):
    """Implements genhub.v1.ApiKeyService over the API key store."""

    def __init__(
        self,
        keys: ApiKeyStoreClient,
        users: UserStoreClient,
        resolver: auth.KeyResolver | None,
        pages: PageTokens,
    ) -> None:
        self._keys = keys
        self._users = users
        self._resolver = resolver  # None: no pepper configured, so no keys can be issued
        self._pages = pages

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context
    ) -> pb.CreateApiKeyResponse:
        """Issue a key; the response is the only place its secret ever appears."""
        if self._resolver is None:
            raise FailedPrecondition(
                "API keys need GENHUB_API_KEY_PEPPER on the gateway", reason="PEPPER_MISSING"
            )
        if not request.HasField("api_key"):
            raise InvalidArgument.one("api_key", "is required")
        wanted = request.api_key
        v = Violations()
        if not wanted.user_id:
            v.add("api_key.user_id", "is required")
        if wanted.role not in pb.Role.values():
            v.add("api_key.role", "is not a role (ROLE_USER or ROLE_ADMIN)")
        name = check_display_name(v, "api_key.display_name", wanted.display_name)
        v.raise_if_any()
        try:
            await self._users.get(wanted.user_id)
        except NotFound:
            raise InvalidArgument.one(
                "api_key.user_id", f"names no user ({wanted.user_id[:64]!r})"
            ) from None
        for attempt in range(CREATE_ATTEMPTS):
            key_id, secret = auth.new_key()
            metadata = pb.ApiKey(
                key_id=key_id,
                prefix=f"{auth.KEY_PREFIX}{key_id}",
                user_id=wanted.user_id,
                role=wanted.role or pb.ROLE_USER,
                display_name=name,
            )
            try:
                stored = await self._keys.create(metadata, self._resolver.hash(secret))
            except AlreadyExists:
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                continue  # a key id collision (40 random bits): draw again
            log.info(
                "API key created",
                extra={
                    "key_id": key_id,
                    "user_id": stored.user_id,
                    "role": pb.Role.Name(stored.role),
                },
            )
            return pb.CreateApiKeyResponse(api_key=stored, key=secret)
        raise AssertionError("unreachable")

    async def GetApiKey(
        self, request: pb.GetApiKeyRequest, context: Context
    ) -> pb.GetApiKeyResponse:
        """A key's metadata."""
        _require_key_id(request.key_id)
        return pb.GetApiKeyResponse(api_key=await self._keys.get(request.key_id))

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Context
    ) -> pb.ListApiKeysResponse:
        """A page of keys; the page token is bound to user_id and show_revoked."""
        if request.page_size < 0:
            raise InvalidArgument.one("page_size", "must not be negative")
        pages = self._pages.bind(
            "ListApiKeys", user_id=request.user_id, show_revoked=request.show_revoked
        )
        keys, cursor = await self._keys.list(
            request.user_id,
            request.show_revoked,
            min(request.page_size or 50, MAX_PAGE_SIZE),
            pages.unwrap(request.page_token),
        )
        return pb.ListApiKeysResponse(api_keys=keys, next_page_token=pages.wrap(cursor))

    async def DeleteApiKey(
        self, request: pb.DeleteApiKeyRequest, context: Context
    ) -> pb.DeleteApiKeyResponse:
        """Revoke a key: at once on this gateway, within the key cache's TTL on the others."""
        _require_key_id(request.key_id)
        revoked = await self._keys.revoke(request.key_id)
        if self._resolver is not None:
            self._resolver.forget(request.key_id)
        log.info("API key revoked", extra={"key_id": request.key_id})
        return pb.DeleteApiKeyResponse(api_key=revoked)
