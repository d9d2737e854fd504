"""Notifier composition root."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from pymongo import AsyncMongoClient

from genhub.common.metrics import start_metrics_server
from genhub.common.server import Server, wait_for_signal
from genhub.egress import EgressPolicy
from genhub.media import MediaSettings, build_store
from genhub.notifier.config import NotifierSettings
from genhub.notifier.consumer import DeliveryConsumer
from genhub.notifier.delivery_log import DeliveryLog
from genhub.notifier.media_links import linker
from genhub.notifier.signing import Signer


def mongo(settings: NotifierSettings) -> AsyncMongoClient[dict[str, Any]]:
    """The delivery log's database client."""
    return AsyncMongoClient(
        settings.mongo_url.get_secret_value(), tz_aware=True, serverSelectionTimeoutMS=5000
    )


async def serve(
    settings: NotifierSettings,
    media: MediaSettings | None = None,
    stop: Callable[[], Coroutine[Any, Any, None]] = wait_for_signal,
) -> None:
    """Deliver webhook events until ``stop`` returns (SIGTERM/SIGINT); with a media store,
    payloads carry fresh URLs of the task's stored files.

    A health-only gRPC server on ``health_listen`` reports NOT_SERVING until the queue is
    consumed, SERVING while it is, and NOT_SERVING again while deliveries in flight finish.
    """
    exporter = start_metrics_server(settings.metrics_listen)
    health = Server([])
    health.bind(settings.health_listen)
    await health.start()
    client = mongo(settings)
    store = build_store(media, fetch=False) if media is not None and media.enabled else None
    try:
        delivery_log = DeliveryLog(client, settings.mongo_db)
        await delivery_log.ensure_indexes()
        consumer = DeliveryConsumer(
            settings.amqp_url.get_secret_value(),
            signer=Signer.from_setting(settings.webhook_secrets.get_secret_value()),
            delivery_log=delivery_log,
            policy=EgressPolicy.from_setting(settings.egress_allow),
            queue=settings.webhook_queue,
            schedule=settings.webhook_retry_schedule,
            timeout=settings.webhook_timeout_seconds,
            concurrency=settings.webhook_concurrency,
            prepare=linker(store) if store is not None else None,
        )
        stopping = asyncio.Event()
        running = asyncio.create_task(consumer.run(stopping))
        consuming = asyncio.create_task(consumer.consuming.wait())
        signal = asyncio.create_task(stop())
        await asyncio.wait({running, consuming}, return_when=asyncio.FIRST_COMPLETED)
        if consuming.done():
            await health.mark_serving()
        await asyncio.wait({running, signal}, return_when=asyncio.FIRST_COMPLETED)
        await health.drain()
        stopping.set()
        for waiter in (signal, consuming):
            waiter.cancel()
        await running
    finally:
        await health.stop(grace=1)
        if exporter is not None:
            exporter.close()
        if store is not None:
            await store.aclose()
        await client.close()
