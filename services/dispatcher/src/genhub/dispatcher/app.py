"""Dispatcher composition root: provider adapter, task-store client, task queue, worker, hooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from prometheus_client import start_http_server

from genhub.common import store_client
from genhub.common.amqp_queue import AmqpTaskQueue
from genhub.common.provider_client import ProviderStoreClient
from genhub.common.secrets import SecretBox
from genhub.common.server import wait_for_signal
from genhub.dispatcher.config import DispatcherSettings
from genhub.dispatcher.credentials import ConfigWatcher
from genhub.dispatcher.guards import guards
from genhub.dispatcher.handler import TaskHandler
from genhub.dispatcher.hooks import Hooks, WorkerHook
from genhub.dispatcher.log_hook import LogHook
from genhub.dispatcher.metrics import MetricsHook
from genhub.dispatcher.worker import Worker
from genhub.providers.sdk import Provider, load_provider
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


@contextlib.asynccontextmanager
async def running(
    settings: DispatcherSettings,
    provider: Provider | None = None,
    extra_hooks: Sequence[WorkerHook] = (),
) -> AsyncIterator[Worker]:
    """Run a worker for ``settings.provider``; drains on exit."""
    adapter = provider or load_provider(settings.provider)
    queue = await AmqpTaskQueue.connect(settings.amqp_url.get_secret_value())
    try:
        async with (
            store_client.connect(settings.taskstore_addr) as store,
            guards(settings, adapter.name) as guard_hooks,
        ):
            await store.put_provider(declared_provider(adapter))
            config = ConfigWatcher(
                adapter.name,
                store,
                ProviderStoreClient(store.channel),
                SecretBox.from_setting(settings.secrets_keys.get_secret_value()),
            )
            await config.refresh()
            hooks = Hooks([MetricsHook(adapter.name), LogHook(), *guard_hooks, *extra_hooks])
            handler = TaskHandler(settings, adapter, store, config, hooks)
            worker = Worker(queue, adapter.name, handler, settings.concurrency)
            await worker.start()
            config_task = asyncio.create_task(config.run_forever(settings.config_refresh_seconds))
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
        await adapter.aclose()


async def serve(settings: DispatcherSettings) -> None:
    """Run until SIGTERM/SIGINT, then drain."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="127.0.0.1")
    async with running(settings):
        await wait_for_signal()
