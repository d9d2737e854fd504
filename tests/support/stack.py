"""The whole GenHub stack in this process: task-store, a demo worker and the gateway, on
ephemeral ports, against the real RabbitMQ (own vhost), FerretDB (own database) and Redis
(own key prefix); optionally with a media store (``media``: e.g. a bucket on the loopback
versitygw) and a webhook notifier (``webhook_secrets``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from genhub.common import store_client
from genhub.common.secrets import SecretBox
from genhub.common.store_client import TaskStoreClient
from genhub.dispatcher import app as dispatcher_app
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.worker import Worker
from genhub.egress import EgressPolicy
from genhub.gateway import app as gateway_app
from genhub.gateway.config import GatewaySettings
from genhub.gateway.rest import server as rest_server
from genhub.gateway.rest.media_route import media_route
from genhub.media import MediaSettings, MediaStore, build_store
from genhub.notifier.consumer import DeliveryConsumer
from genhub.notifier.delivery_log import DeliveryLog
from genhub.notifier.media_links import linker
from genhub.notifier.signing import Signer
from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import Provider
from genhub.taskstore import app as taskstore_app
from genhub.taskstore.config import TaskStoreSettings
from genhub.v1 import task_service_pb2_grpc
from tests.support import infra

TEST_PEPPER = "test-pepper-" + "p" * 32


@dataclass
class Stack:
    """Handles on a running stack."""

    tasks: task_service_pb2_grpc.TaskServiceAsyncStub
    store: TaskStoreClient
    worker: Worker | None
    vhost: str
    database: str
    taskstore_addr: str
    gateway_addr: str
    taskstore: taskstore_app.TaskStore
    rest_url: str = ""
    secrets_keys: str = ""
    media: MediaStore | None = None  # the gateway's media store (serves and deletes)
    deliveries: DeliveryLog | None = None  # the notifier's delivery log


def dispatcher_settings(vhost: str, taskstore_addr: str, **overrides: Any) -> DispatcherSettings:
    """Worker settings for tests: fast backoff, few attempts, no background sweeps."""
    values: dict[str, Any] = {
        "provider": "demo",
        "amqp_url": infra.amqp_url(vhost),
        "redis_url": infra.REDIS_URL,
        "taskstore_addr": taskstore_addr,
        "concurrency": 4,
        "max_attempts": 3,
        "backoff_base_seconds": 0.05,
        "backoff_cap_seconds": 0.5,
        "lease_seconds": 5,
        "drain_grace_seconds": 5,
        "config_refresh_seconds": 0.2,
    }
    values.update(overrides)
    return DispatcherSettings(**values)


@contextlib.asynccontextmanager
async def start_stack(
    vhost: str,
    database: str,
    *,
    worker: bool = True,
    demo: DemoSettings | None = None,
    provider: Provider | None = None,
    rest: bool = False,
    secrets_keys: str | None = None,
    store_settings: dict[str, Any] | None = None,
    gateway: dict[str, Any] | None = None,
    media: MediaSettings | None = None,
    webhook_secrets: Sequence[str] = (),
    webhook_schedule: Sequence[float] = (0.2, 0.5),
    egress_allow: str = "",
    **dispatcher_overrides: Any,
) -> AsyncIterator[Stack]:
    """Run task-store, (optionally) a demo worker and the gateway (with, if ``rest``, its REST
    server, at ``Stack.rest_url``) until the block exits. ``store_settings`` overrides task-store
    settings (e.g. the reaper's), ``gateway`` the gateway's (authentication, limits),
    ``dispatcher_overrides`` the worker's. ``media``: the media store of worker and gateway;
    ``webhook_secrets``: run a notifier (delivery consumer) signing with them; ``egress_allow``:
    the gateway's and notifier's egress exceptions (e.g. loopback webhook receivers)."""
    prefix = f"{database}:"
    keys = SecretBox.generate_key() if secrets_keys is None else secrets_keys
    ts_settings = TaskStoreSettings(
        taskstore_listen="127.0.0.1:0",
        mongo_url=SecretStr(infra.MONGO_URL),
        mongo_db=database,
        redis_url=SecretStr(infra.REDIS_URL),
        amqp_url=SecretStr(infra.amqp_url(vhost)),
        events_prefix=prefix,
        **{"reap_interval_seconds": 3600, **(store_settings or {})},
    )
    async with contextlib.AsyncExitStack() as stack:
        taskstore = await stack.enter_async_context(taskstore_app.running(ts_settings))
        taskstore_addr = f"127.0.0.1:{taskstore.port}"
        running_worker = None
        if worker:
            running_worker = await stack.enter_async_context(
                dispatcher_app.running(
                    dispatcher_settings(
                        vhost,
                        taskstore_addr,
                        secrets_keys=SecretStr(keys),
                        # Breakers and limits in this test's own Redis keys.
                        **{"events_prefix": prefix, **dispatcher_overrides},
                    ),
                    provider=provider
                    or DemoProvider(demo or DemoSettings(video_render_seconds=0.3)),
                    media=media,
                )
            )
        gw_settings = GatewaySettings(
            gateway_listen="127.0.0.1:0",
            taskstore_addr=taskstore_addr,
            redis_url=SecretStr(infra.REDIS_URL),
            events_prefix=prefix,
            catalogue_ttl_seconds=0.2,
            rest_listen="127.0.0.1:0",
            secrets_keys=SecretStr(keys),
            egress_allow=egress_allow,
            # Auth stays off unless ``gateway`` turns it on; a pepper lets API keys be issued.
            **({"api_key_pepper": SecretStr(TEST_PEPPER)} | (gateway or {})),
        )
        media_store = None
        routes = []
        if media is not None and media.enabled:
            media_store = build_store(media, fetch=False)
            stack.push_async_callback(media_store.aclose)
            signer = media.signer()
            if signer is not None:
                routes.append(media_route(media_store, signer))
        _, gw_port = await stack.enter_async_context(gateway_app.running(gw_settings, media_store))
        gateway_addr = f"127.0.0.1:{gw_port}"
        rest_url = ""
        if rest:
            rest_port = await stack.enter_async_context(
                rest_server.running(gw_settings, gateway_addr, routes)
            )
            rest_url = f"http://127.0.0.1:{rest_port}"
        deliveries = None
        if webhook_secrets:
            deliveries = await stack.enter_async_context(
                _notifier(
                    vhost, database, webhook_secrets, webhook_schedule, egress_allow, media_store
                )
            )
        channel = grpc.aio.insecure_channel(gateway_addr)
        stack.push_async_callback(channel.close)
        store = await stack.enter_async_context(store_client.connect(taskstore_addr))
        yield Stack(
            tasks=task_service_pb2_grpc.TaskServiceStub(channel),
            store=store,
            worker=running_worker,
            vhost=vhost,
            database=database,
            taskstore_addr=taskstore_addr,
            gateway_addr=gateway_addr,
            taskstore=taskstore,
            rest_url=rest_url,
            secrets_keys=keys,
            media=media_store,
            deliveries=deliveries,
        )


@contextlib.asynccontextmanager
async def _notifier(
    vhost: str,
    database: str,
    secrets: Sequence[str],
    schedule: Sequence[float],
    allow: str,
    media: MediaStore | None,
) -> AsyncIterator[DeliveryLog]:
    """A delivery consumer (what ``genhub-notifier`` runs) on the test's vhost, logging to its
    database and linking ``media``'s files into payloads; yields the delivery log."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.MONGO_URL, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    log = DeliveryLog(client, database)
    await log.ensure_indexes()
    consumer = DeliveryConsumer(
        infra.amqp_url(vhost),
        signer=Signer(list(secrets)),
        delivery_log=log,
        policy=EgressPolicy.from_setting(allow),
        schedule=schedule,
        timeout=5,
        prepare=linker(media) if media is not None else None,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    try:
        yield log
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await client.close()
