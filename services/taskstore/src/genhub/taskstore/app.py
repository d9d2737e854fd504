"""task-store composition root: MongoDB, RabbitMQ (the outbox relay), Redis events, the reaper,
the gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from genhub.common.amqp_queue import AmqpTaskQueue
from genhub.common.events import EventPublisher
from genhub.common.metrics import start_metrics_server
from genhub.common.server import Server, wait_for_signal
from genhub.notifier.notifier import WebhookNotifier
from genhub.store.v1 import (
    api_key_store_pb2,
    api_key_store_pb2_grpc,
    provider_store_pb2,
    provider_store_pb2_grpc,
    task_store_pb2,
    task_store_pb2_grpc,
    user_store_pb2,
    user_store_pb2_grpc,
)
from genhub.taskstore import task_metrics
from genhub.taskstore.api_key_repository import ApiKeyRepository
from genhub.taskstore.api_key_servicer import ApiKeyStoreServicer
from genhub.taskstore.config import TaskStoreSettings
from genhub.taskstore.mongo import Database
from genhub.taskstore.mongo_task_repository import MongoTaskRepository
from genhub.taskstore.operations import Lifecycle, Transition
from genhub.taskstore.outbox import Outbox
from genhub.taskstore.provider_servicer import ProviderStoreServicer
from genhub.taskstore.providers import ProviderRepository
from genhub.taskstore.queue_metrics import QueueMetrics
from genhub.taskstore.reaper import Reaper
from genhub.taskstore.task_servicer import TaskStoreServicer
from genhub.taskstore.user_servicer import UserStoreServicer
from genhub.taskstore.users import UserRepository
from genhub.taskstore.webhook_hook import WebhookHook

# Clients reconnect (and resolve the name again) after this many seconds, so task-store replicas
# added by a scale-up get their share of calls; every task-store call is short (at most 30 s).
MAX_CONNECTION_AGE = 300.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskStore:
    """A running task-store: its server and port, and the parts tests drive directly."""

    server: Server
    port: int
    lifecycle: Lifecycle
    outbox: Outbox
    reaper: Reaper
    queue: AmqpTaskQueue


async def _provider_names(providers: ProviderRepository) -> list[str]:
    return [provider.name for provider in await providers.list_providers()]


SERVICE_NAMES = [
    task_store_pb2.DESCRIPTOR.services_by_name["TaskStoreService"].full_name,
    provider_store_pb2.DESCRIPTOR.services_by_name["ProviderStoreService"].full_name,
    user_store_pb2.DESCRIPTOR.services_by_name["UserStoreService"].full_name,
    api_key_store_pb2.DESCRIPTOR.services_by_name["ApiKeyStoreService"].full_name,
]


@contextlib.asynccontextmanager
async def running(
    settings: TaskStoreSettings, *, gated: bool | None = None
) -> AsyncIterator[TaskStore]:
    """Start task-store; yields it running, stops it on exit.

    ``gated`` overrides the FerretDB write-gate detection (tests of the MongoDB path).
    """
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(), tz_aware=True, serverSelectionTimeoutMS=5000
    )
    redis = aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=2, socket_connect_timeout=2
    )
    events = EventPublisher(redis, settings.events_prefix)
    server = Server(SERVICE_NAMES, max_connection_age=MAX_CONNECTION_AGE)
    port = server.bind(settings.taskstore_listen)
    queue: AmqpTaskQueue | None = None
    outbox: Outbox | None = None
    queue_metrics: QueueMetrics | None = None
    background: list[asyncio.Task[None]] = []
    # Connects on the first event; only the work queue is declared here (the notifier owns
    # its retry queues).
    notifier = WebhookNotifier(
        settings.amqp_url.get_secret_value(), queue=settings.webhook_queue, schedule=()
    )
    webhooks = WebhookHook(notifier)
    try:
        database = await Database.open(mongo, settings.mongo_db, gated=gated)
        tasks = MongoTaskRepository(database)
        await tasks.ensure_indexes()
        users = UserRepository(database.collection("users"))
        await users.ensure_indexes()
        providers = ProviderRepository(database.collection("providers"))
        queue = await AmqpTaskQueue.connect(settings.amqp_url.get_secret_value())
        outbox = Outbox(
            tasks,
            queue,
            heartbeat_seconds=settings.relay_heartbeat_seconds,
            dead_after_seconds=settings.relay_dead_seconds,
        )
        await outbox.start()
        events.start()

        async def announce(transition: Transition) -> None:
            await events.task_changed(transition.task)

        lifecycle = Lifecycle(tasks, outbox, [announce, task_metrics.observe, webhooks])
        reaper = Reaper(
            lifecycle,
            queue,
            stale_queued_seconds=settings.stale_queued_seconds,
            pending_grace_seconds=settings.pending_grace_seconds,
        )
        queue_metrics = QueueMetrics(
            settings.amqp_url.get_secret_value(),
            lambda: _provider_names(providers),
        )
        background = [
            asyncio.create_task(outbox.run_forever()),
            asyncio.create_task(reaper.run_forever(settings.reap_interval_seconds)),
            asyncio.create_task(webhooks.run_forever(settings.relay_heartbeat_seconds)),
            asyncio.create_task(queue_metrics.run_forever(settings.queue_metrics_seconds)),
        ]
        task_store_pb2_grpc.add_TaskStoreServiceServicer_to_server(
            TaskStoreServicer(lifecycle, providers), server.grpc
        )
        provider_store_pb2_grpc.add_ProviderStoreServiceServicer_to_server(
            ProviderStoreServicer(providers), server.grpc
        )
        user_store_pb2_grpc.add_UserStoreServiceServicer_to_server(
            UserStoreServicer(users), server.grpc
        )
        api_keys = ApiKeyRepository(database.collection("api_keys"))
        await api_keys.ensure_indexes()
        api_key_store_pb2_grpc.add_ApiKeyStoreServiceServicer_to_server(
            ApiKeyStoreServicer(api_keys), server.grpc
        )
        await server.start()
        await server.mark_serving()
        log.info("task-store serving", extra={"port": port, "database": settings.mongo_db})
        yield TaskStore(server, port, lifecycle, outbox, reaper, queue)
    finally:
        await server.stop()
        for job in background:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        if outbox is not None:
            await outbox.close()
        await webhooks.close()
        await notifier.close()
        if queue_metrics is not None:
            await queue_metrics.close()
        if queue is not None:
            await queue.close()
        await events.close()
        await redis.aclose()
        await mongo.close()


async def serve(
    settings: TaskStoreSettings, stop: Callable[[], Awaitable[None]] = wait_for_signal
) -> None:
    """Run until ``stop`` returns (SIGTERM/SIGINT); then report NOT_SERVING for
    ``shutdown_delay_seconds`` while still answering, and stop."""
    metrics = start_metrics_server(settings.metrics_listen)
    try:
        async with running(settings) as store:
            await stop()
            await store.server.drain(settings.shutdown_delay_seconds)
    finally:
        if metrics is not None:
            metrics.close()
