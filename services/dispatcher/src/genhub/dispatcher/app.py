"""Dispatcher composition root: provider adapter, task-store client, task queue, worker, hooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from genhub.common import store_client
from genhub.common.amqp_queue import AmqpTaskQueue
from genhub.common.errors import NotFound
from genhub.common.metrics import start_metrics_server
from genhub.common.provider_client import ProviderStoreClient
from genhub.common.secrets import SecretBox
from genhub.common.server import Server, wait_for_signal
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.credentials import ConfigWatcher
from genhub.dispatcher.guards import guards
from genhub.dispatcher.handler import TaskHandler
from genhub.dispatcher.hooks import Hooks, WorkerHook
from genhub.dispatcher.log_hook import LogHook
from genhub.dispatcher.media_hook import MediaHook
from genhub.dispatcher.metrics import MetricsHook
from genhub.dispatcher.worker import Worker
from genhub.media import MediaSettings
from genhub.providers.sdk import Provider, available_providers, load_provider
from genhub.v1 import provider_pb2

log = logging.getLogger(__name__)


def declared_provider(provider: Provider) -> provider_pb2.Provider:
    """The catalogue a worker declares to task-store at start."""
    models = list(provider.catalogue())
    return provider_pb2.Provider(
        name=provider.name,
        display_name=provider.display_name,
        enabled=True,
        task_types=sorted({m.type for m in models}),
        models=models,
    )


async def load_adapter(name: str, configs: ProviderStoreClient) -> Provider:
    """The adapter of provider ``name``: its installed package, else the generic adapter of the
    wire API its stored configuration names (``compatible_api``); LookupError if neither."""
    if name in available_providers():
        return load_provider(name)
    try:
        compatible_api = (await configs.get_config(name)).config.compatible_api
    except NotFound:
        compatible_api = ""
    return load_provider(name, compatible_api=compatible_api)


@contextlib.asynccontextmanager
async def running(
    settings: DispatcherSettings,
    provider: Provider | None = None,
    extra_hooks: Sequence[WorkerHook] = (),
    media: MediaSettings | None = None,
) -> AsyncIterator[Worker]:
    """Run a worker for ``settings.provider``; drains on exit. With a media store configured
    (``media.media_backend``), outputs are stored there before they are recorded."""
    adapter = provider
    media_hook: MediaHook | None = None
    queue = await AmqpTaskQueue.connect(settings.amqp_url.get_secret_value())
    try:
        async with store_client.connect(settings.taskstore_addr) as store:
            configs = ProviderStoreClient(store.channel)
            if adapter is None:
                adapter = await load_adapter(settings.provider, configs)
            await store.put_provider(declared_provider(adapter))
            config = ConfigWatcher(
                adapter.name,
                store,
                configs,
                SecretBox.from_setting(settings.secrets_keys.get_secret_value()),
            )
            await config.refresh()
            async with guards(settings, adapter.name) as guard_hooks:
                hooks = Hooks([MetricsHook(adapter.name), LogHook(), *guard_hooks, *extra_hooks])
                if media is not None and media.enabled:
                    media_hook = MediaHook(media, adapter)
                    hooks.add(media_hook)
                handler = TaskHandler(settings, adapter, store, config, hooks)
                worker = Worker(queue, adapter.name, handler, settings.concurrency)
                await worker.start()
                refresh = config.run_forever(settings.config_refresh_seconds)
                config_task = asyncio.create_task(refresh)
                log.info(
                    "worker consuming",
                    extra={"provider": adapter.name, "concurrency": settings.concurrency},
                )
                try:
                    yield worker
                finally:
                    config_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await config_task
                    await worker.drain(settings.drain_grace_seconds)
    finally:
        await queue.close()
        if media_hook is not None:
            await media_hook.aclose()
        if adapter is not None:
            await adapter.aclose()


async def serve(
    settings: DispatcherSettings,
    media: MediaSettings | None = None,
    stop: Callable[[], Awaitable[None]] = wait_for_signal,
) -> None:
    """Run until ``stop`` returns (SIGTERM/SIGINT), then drain.

    A health-only gRPC server on ``health_listen`` reports NOT_SERVING while the worker
    connects, SERVING while it consumes, and NOT_SERVING again while it drains.
    """
    exporter = start_metrics_server(settings.metrics_listen)
    health = Server([])
    health.bind(settings.health_listen)
    await health.start()
    try:
        async with running(settings, media=media):
            await health.mark_serving()
            await stop()
            # No shutdown delay: nothing routes calls to a worker; it stops taking messages now.
            await health.drain()
    finally:
        await health.stop(grace=1)
        if exporter is not None:
            exporter.close()
