"""Notifier composition root."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient

from genhub.common.server import wait_for_signal
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


async def serve(settings: NotifierSettings, media: MediaSettings | None = None) -> None:
    """Deliver webhook events until SIGTERM/SIGINT; with a media store, payloads carry fresh
    URLs of the task's stored files."""
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
        stop = asyncio.Event()
        running = asyncio.create_task(consumer.run(stop))
        signal = asyncio.create_task(wait_for_signal())
        await asyncio.wait({running, signal}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        signal.cancel()
        await running
    finally:
        if store is not None:
            await store.aclose()
        await client.close()
