"""Each service's health through its real start and stop path (``serve``), against the real
RabbitMQ, FerretDB and Redis: NOT_SERVING until its dependencies are connected (task-store for
the gateway, RabbitMQ for a worker), SERVING, then NOT_SERVING while draining; the gateway's
/healthz and /readyz follow."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from genhub.common.secrets import SecretBox
from genhub.common.server import LIVENESS_SERVICE
from genhub.dispatcher import app as dispatcher_app
from genhub.gateway import app as gateway_app
from genhub.gateway.config import GatewaySettings
from genhub.notifier import app as notifier_app
from genhub.notifier.config import NotifierSettings
from genhub.taskstore import app as taskstore_app
from genhub.taskstore.config import TaskStoreSettings
from tests.support import infra
from tests.support.proxy import GatedProxy, free_port
from tests.support.stack import dispatcher_settings
from tests.support.waiting import eventually

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DRAIN_DELAY = 1.0  # the services' shutdown delay here: long enough to observe the drain


async def status(address: str, service: str = "") -> int | None:
    """The health status ``address`` reports, None when nothing answers."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
        except grpc.aio.AioRpcError:
            return None
        return int(reply.status)


def taskstore_settings(vhost: str, database: str, listen: str = "127.0.0.1:0") -> TaskStoreSettings:
    return TaskStoreSettings(
        taskstore_listen=listen,
        amqp_url=SecretStr(infra.amqp_url(vhost)),
        mongo_url=SecretStr(infra.MONGO_URL),
        mongo_db=database,
        redis_url=SecretStr(infra.REDIS_URL),
        events_prefix=f"{database}:",
        metrics_listen="",
        shutdown_delay_seconds=DRAIN_DELAY,
    )


@contextlib.asynccontextmanager
async def taskstore(vhost: str, database: str) -> AsyncIterator[str]:
    async with taskstore_app.running(taskstore_settings(vhost, database)) as store:
        yield f"127.0.0.1:{store.port}"


@contextlib.asynccontextmanager
async def serving(
    serve: Any, settings: Any
) -> AsyncIterator[tuple[asyncio.Event, asyncio.Task[None]]]:
    """Run ``serve(settings, stop)`` in a task; yields the stop event and the task."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop.wait))
    try:
        yield stop, task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_gateway_is_not_serving_until_taskstore_answers_then_drains(
    vhost: str, database: str
) -> None:
    grpc_address = f"127.0.0.1:{free_port()}"
    rest = f"http://127.0.0.1:{free_port()}"
    async with taskstore(vhost, database) as store:
        store_port = int(store.rsplit(":", 1)[1])
        async with GatedProxy(store_port).running() as gate:
            settings = GatewaySettings(
                gateway_listen=grpc_address,
                rest_listen=rest.removeprefix("http://"),
                taskstore_addr=f"127.0.0.1:{gate.port}",
                redis_url=SecretStr(infra.REDIS_URL),
                events_prefix=f"{database}:",
                secrets_keys=SecretStr(SecretBox.generate_key()),
                metrics_listen="",
                shutdown_delay_seconds=DRAIN_DELAY,
            )
            async with serving(gateway_app.serve, settings) as (stop, task):
                # Up and answering, but task-store (behind the closed gate) is not reached yet.
                await eventually(
                    lambda: status(grpc_address), lambda s: s == NOT_SERVING, what="NOT_SERVING"
                )
                assert gate.held >= 1
                assert await status(grpc_address, LIVENESS_SERVICE) == SERVING
                assert await status(grpc_address) == NOT_SERVING
                gate.open()
                await eventually(
                    lambda: status(grpc_address), lambda s: s == SERVING, what="SERVING"
                )
                async with (
                    httpx.AsyncClient(base_url=rest, timeout=5) as http,
                    grpc.aio.insecure_channel(grpc_address) as channel,
                ):
                    ready = await eventually(
                        lambda: http.get("/readyz"), lambda r: r.status_code == 200, what="ready"
                    )
                    assert ready.json() == {"status": "SERVING"}
                    assert (await http.get("/healthz")).status_code == 200
                    stub: Any = health_pb2_grpc.HealthStub(channel)
                    watch = stub.Watch(health_pb2.HealthCheckRequest())
                    assert (await watch.read()).status == SERVING
                    stop.set()  # what SIGTERM does
                    assert (await watch.read()).status == NOT_SERVING
                    # Still answering during the shutdown delay, as not ready.
                    not_ready = await http.get("/readyz")
                    assert not_ready.status_code == 503
                    assert not_ready.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
                    assert (await http.get("/healthz")).status_code == 200
                    await asyncio.wait_for(task, timeout=30)
    assert await status(grpc_address) is None


async def test_worker_health_follows_its_broker_connection_and_drain(
    vhost: str, database: str
) -> None:
    health = f"127.0.0.1:{free_port()}"
    async with taskstore(vhost, database) as store, GatedProxy(infra.AMQP_PORT).running() as broker:
        settings = dispatcher_settings(
            vhost,
            store,
            amqp_url=f"amqp://guest:guest@127.0.0.1:{broker.port}/{vhost}",
            health_listen=health,
            metrics_listen="",
        )
        async with serving(dispatcher_app.serve, settings) as (stop, task):
            await eventually(lambda: status(health), lambda s: s == NOT_SERVING, what="up")
            assert broker.held >= 1
            broker.open()
            await eventually(lambda: status(health), lambda s: s == SERVING, what="SERVING")
            assert await status(health, LIVENESS_SERVICE) == SERVING
            async with grpc.aio.insecure_channel(health) as channel:
                stub: Any = health_pb2_grpc.HealthStub(channel)
                watch = stub.Watch(health_pb2.HealthCheckRequest())
                assert (await watch.read()).status == SERVING
                stop.set()
                # Draining: NOT_SERVING is sent before the health server stops and ends the stream.
                assert (await watch.read()).status == NOT_SERVING
                assert await watch.read() is grpc.aio.EOF
            await asyncio.wait_for(task, timeout=30)
    assert await status(health) is None


async def test_taskstore_serves_once_started_and_drains_on_stop(vhost: str, database: str) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = taskstore_settings(vhost, database, address)
    async with serving(taskstore_app.serve, settings) as (stop, _):
        await eventually(lambda: status(address), lambda s: s == SERVING, what="SERVING")
        stop.set()
        await eventually(lambda: status(address), lambda s: s == NOT_SERVING, what="drain")


async def test_notifier_serves_once_it_consumes_and_drains_on_stop(
    vhost: str, database: str
) -> None:
    health = f"127.0.0.1:{free_port()}"
    async with GatedProxy(infra.AMQP_PORT).running() as broker:
        settings = NotifierSettings(
            amqp_url=SecretStr(f"amqp://guest:guest@127.0.0.1:{broker.port}/{vhost}"),
            mongo_url=SecretStr(infra.MONGO_URL),
            mongo_db=database,
            webhook_secrets=SecretStr("whsec_" + base64.b64encode(b"k" * 32).decode()),
            health_listen=health,
            metrics_listen="",
        )
        async with serving(notifier_app.serve, settings) as (stop, task):
            await eventually(lambda: status(health), lambda s: s == NOT_SERVING, what="up")
            broker.open()
            await eventually(lambda: status(health), lambda s: s == SERVING, what="SERVING")
            async with grpc.aio.insecure_channel(health) as channel:
                stub: Any = health_pb2_grpc.HealthStub(channel)
                watch = stub.Watch(health_pb2.HealthCheckRequest())
                assert (await watch.read()).status == SERVING
                stop.set()
                assert (await watch.read()).status == NOT_SERVING
            await asyncio.wait_for(task, timeout=30)
    assert await status(health) is None
