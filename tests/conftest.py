"""Fixtures for tests that touch the real RabbitMQ, Redis and FerretDB."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from tests.support import buckets, infra


@pytest.fixture(scope="session")
def infrastructure() -> None:
    """Fail fast, naming the service, when the real infrastructure is not running."""
    infra.require_listening("RabbitMQ", 5672)
    infra.require_listening("RabbitMQ management", 15672)
    infra.require_listening("Redis", 6379)
    infra.require_listening("FerretDB", 27017)


@pytest.fixture(scope="session")
def object_store() -> str:
    """The S3 endpoint (versitygw from ``scripts/infra.sh up``); fails, naming it, when down."""
    infra.require_listening("versitygw (S3)", infra.S3_PORT)
    return infra.S3_ENDPOINT


@pytest.fixture
async def s3_bucket(object_store: str, unique: str) -> AsyncIterator[str]:
    """A fresh bucket for this test, emptied and removed afterwards."""
    async with buckets.bucket(unique) as name:
        yield name


@pytest.fixture
def unique() -> str:
    """A short unique name for this test's vhost, database and key prefix."""
    return "t" + secrets.token_hex(5)


@pytest.fixture
async def vhost(infrastructure: None, unique: str) -> AsyncIterator[str]:
    """A fresh RabbitMQ vhost, deleted afterwards."""
    await infra.create_vhost(unique)
    yield unique
    await infra.delete_vhost(unique)


@pytest.fixture
async def mongo(infrastructure: None) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """A pymongo async client on FerretDB."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.MONGO_URL, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    yield client
    await client.close()


@pytest.fixture
async def database(mongo: AsyncMongoClient[dict[str, Any]], unique: str) -> AsyncIterator[str]:
    """A fresh database name, dropped afterwards."""
    yield unique
    await mongo.drop_database(unique)


@pytest.fixture
async def redis_client(infrastructure: None) -> AsyncIterator[aioredis.Redis]:
    """A Redis client."""
    client = aioredis.Redis.from_url(infra.REDIS_URL)
    yield client
    await client.aclose()
