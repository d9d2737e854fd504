"""Smoke tests proving the stack is real: RabbitMQ priorities with confirms, FerretDB through
pymongo's async client, and a Redis round trip."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aio_pika
import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from tests.support import infra


async def test_priority_queue_delivers_highest_priority_first(vhost: str) -> None:
    connection = await aio_pika.connect_robust(infra.amqp_url(vhost))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue("smoke", durable=True, arguments={"x-max-priority": 3})
        rng = random.Random(7)
        priorities = [rng.choice((1, 2, 3)) for _ in range(1000)]
        # Each publish awaits the broker's confirm; a nack would raise.
        confirms = [
            channel.default_exchange.publish(
                aio_pika.Message(str(i).encode(), priority=p, delivery_mode=2),
                routing_key="smoke",
            )
            for i, p in enumerate(priorities)
        ]
        await asyncio.gather(*confirms)

        received: list[int] = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            received.append(message.priority or 0)
    assert len(received) == 1000
    assert received == sorted(priorities, reverse=True)


async def test_ferretdb_insert_find_update_and_unique_index(
    mongo: AsyncMongoClient[dict[str, Any]], database: str
) -> None:
    tasks = mongo[database]["tasks"]
    await tasks.create_index("key", unique=True)
    await tasks.insert_one({"_id": "a", "key": "k1", "status": "queued", "prompt": "一只猫"})
    await tasks.insert_one({"_id": "b", "key": "k2", "status": "queued", "prompt": "a dog"})

    found = await tasks.find_one({"prompt": "一只猫"})
    assert found is not None and found["_id"] == "a"

    updated = await tasks.find_one_and_update(
        {"_id": "a", "status": "queued"},
        {"$set": {"status": "running"}, "$inc": {"n": 1}},
        return_document=True,
    )
    assert updated is not None and updated["status"] == "running" and updated["n"] == 1
    # The same compare-and-set again matches nothing: the guard works on FerretDB.
    again = await tasks.find_one_and_update(
        {"_id": "a", "status": "queued"}, {"$set": {"status": "running"}}
    )
    assert again is None

    with pytest.raises(DuplicateKeyError):
        await tasks.insert_one({"_id": "c", "key": "k1"})
    assert await tasks.count_documents({}) == 2


async def test_redis_round_trip(redis_client: aioredis.Redis, unique: str) -> None:
    key = f"{unique}:smoke"
    await redis_client.set(key, "value", ex=60)
    assert await redis_client.get(key) == b"value"
    assert await redis_client.delete(key) == 1
