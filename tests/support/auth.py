"""Stacks with authentication on, and helpers to make users and keys and call as them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import grpc
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from genhub.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)
from tests.support import infra
from tests.support.stack import TEST_PEPPER, Stack, start_stack

BOOTSTRAP_KEY = "bootstrap-" + "b" * 32


def auth_settings(**overrides: Any) -> dict[str, Any]:
    """Gateway settings that turn authentication on."""
    return {
        "auth_enabled": True,
        "api_key_pepper": SecretStr(TEST_PEPPER),
        "bootstrap_admin_key": SecretStr(BOOTSTRAP_KEY),
        "api_key_cache_seconds": 30.0,
        **overrides,
    }


@contextlib.asynccontextmanager
async def auth_stack(**gateway: Any) -> AsyncIterator[Stack]:
    """A REST stack with authentication on, in its own vhost and database (removed after)."""
    name = "t" + secrets.token_hex(5)
    await infra.create_vhost(name)
    try:
        async with start_stack(name, name, rest=True, gateway=auth_settings(**gateway)) as stack:
            yield stack
    finally:
        await infra.delete_vhost(name)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.MONGO_URL)
        await mongo.drop_database(name)
        await mongo.close()


def bearer(key: str) -> tuple[tuple[str, str]]:
    """gRPC metadata carrying ``key``."""
    return (("authorization", f"Bearer {key}"),)


async def new_user_key(
    channel: grpc.aio.Channel,
    email: str,
    role: api_key_service_pb2.Role.ValueType = api_key_service_pb2.ROLE_USER,
) -> tuple[str, str, str]:
    """Create (as the bootstrap admin) a user and a key for them: ``(user_id, key_id, key)``."""
    admin = bearer(BOOTSTRAP_KEY)
    users = user_service_pb2_grpc.UserServiceStub(channel)
    user = (
        await users.CreateUser(
            user_service_pb2.CreateUserRequest(user=user_service_pb2.User(email=email)),
            metadata=admin,
        )
    ).user
    keys = api_key_service_pb2_grpc.ApiKeyServiceStub(channel)
    created = await keys.CreateApiKey(
        api_key_service_pb2.CreateApiKeyRequest(
            api_key=api_key_service_pb2.ApiKey(user_id=user.user_id, role=role)
        ),
        metadata=admin,
    )
    return user.user_id, created.api_key.key_id, created.key
