"""task-store composition root: MongoDB, Redis events, the gRPC server."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from genhub.common.events import EventPublisher
from genhub.common.metrics import start_metrics_server
from genhub.common.server import Server, wait_for_signal
from genhub.store.v1 import (
    provider_store_pb2,
    provider_store_pb2_grpc,
    task_store_pb2,
    task_store_pb2_grpc,
    user_store_pb2,
    user_store_pb2_grpc,
)
from genhub.taskstore.config import TaskStoreSettings
from genhub.taskstore.provider_servicer import ProviderStoreServicer
from genhub.taskstore.providers import ProviderRepository
from genhub.taskstore.repository import TaskRepository
from genhub.taskstore.servicer import TaskStoreServicer
from genhub.taskstore.user_servicer import UserStoreServicer
from genhub.taskstore.users import UserRepository

log = logging.getLogger(__name__)
SERVICE_NAMES = [
    task_store_pb2.DESCRIPTOR.services_by_name["TaskStoreService"].full_name,
    provider_store_pb2.DESCRIPTOR.services_by_name["ProviderStoreService"].full_name,
    user_store_pb2.DESCRIPTOR.services_by_name["UserStoreService"].full_name,
]


@contextlib.asynccontextmanager
async def running(settings: TaskStoreSettings) -> AsyncIterator[tuple[Server, int]]:
    """Start task-store; yields the server and its port, stops it on exit."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(), tz_aware=True, serverSelectionTimeoutMS=5000
    )
    redis = aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=2, socket_connect_timeout=2
    )
    server = Server(SERVICE_NAMES)
    port = server.bind(settings.taskstore_listen)
    try:
        repository = await TaskRepository.open(mongo, settings.mongo_db)
        users = UserRepository(mongo[settings.mongo_db]["users"], repository.writing)
        await users.ensure_indexes()
        providers = ProviderRepository(repository.providers, repository.writing)
        task_store_pb2_grpc.add_TaskStoreServiceServicer_to_server(
            TaskStoreServicer(repository, providers, EventPublisher(redis, settings.events_prefix)),
            server.grpc,
        )
        provider_store_pb2_grpc.add_ProviderStoreServiceServicer_to_server(
            ProviderStoreServicer(providers), server.grpc
        )
        user_store_pb2_grpc.add_UserStoreServiceServicer_to_server(
            UserStoreServicer(users), server.grpc
        )
        await server.start()
        await server.mark_serving()
        log.info("task-store serving", extra={"port": port, "database": settings.mongo_db})
        yield server, port
    finally:
        await server.stop()
        await redis.aclose()
        await mongo.close()


async def serve(
    settings: TaskStoreSettings, stop: Callable[[], Awaitable[None]] = wait_for_signal
) -> None:
    """Run until ``stop`` returns (SIGTERM/SIGINT); then report NOT_SERVING for
    ``shutdown_delay_seconds`` while still answering, and stop."""
    metrics = start_metrics_server(settings.metrics_listen)
    try:
        async with running(settings) as (server, _):
            await stop()
            await server.drain(settings.shutdown_delay_seconds)
    finally:
        if metrics is not None:
            metrics.close()
