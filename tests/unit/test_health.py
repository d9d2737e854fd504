"""The gRPC health service of the server skeleton: Check, Watch and List through the
interceptor; readiness NOT_SERVING until dependencies, SERVING, NOT_SERVING while draining;
liveness SERVING throughout. Also the library's own servicer behind our interceptor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health as library_health
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genhub.common.interceptor import ServerInterceptor
from genhub.common.server import LIVENESS_SERVICE, Server

API = "genhub.test.Api"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
LIST_REQUEST = getattr(health_pb2, "HealthListRequest")()  # noqa: B009  (absent from the stubs)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, Any]]:
    """A started skeleton server (readiness NOT_SERVING) and a health stub to it."""
    skeleton = Server([API])
    port = skeleton.bind("127.0.0.1:0")
    await skeleton.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # typed for sync channels only
        yield skeleton, stub
    await skeleton.stop(grace=0)


async def check(stub: Any, service: str = "") -> int:
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


async def test_not_serving_until_marked_then_serving(server: tuple[Server, Any]) -> None:
    skeleton, stub = server
    assert await check(stub) == NOT_SERVING
    assert await check(stub, API) == NOT_SERVING
    assert await check(stub, LIVENESS_SERVICE) == SERVING
    await skeleton.mark_serving()
    assert await check(stub) == SERVING
    assert await check(stub, API) == SERVING
    await skeleton.mark_not_serving()
    assert await check(stub) == NOT_SERVING


async def test_check_of_an_unknown_service_is_not_found(server: tuple[Server, Any]) -> None:
    _, stub = server
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(stub, "no.such.Service")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_reports_every_service(server: tuple[Server, Any]) -> None:
    skeleton, stub = server
    await skeleton.mark_serving()
    reply = await stub.List(LIST_REQUEST, timeout=5)
    assert {name: r.status for name, r in reply.statuses.items()} == {
        "": SERVING,
        API: SERVING,
        LIVENESS_SERVICE: SERVING,
    }


async def test_watch_streams_serving_then_not_serving_on_drain_and_ends_on_stop(
    server: tuple[Server, Any],
) -> None:
    skeleton, stub = server
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == NOT_SERVING
    await skeleton.mark_serving()
    assert (await watch.read()).status == SERVING
    await skeleton.drain()
    assert (await watch.read()).status == NOT_SERVING
    # Draining is for good: a late mark_serving does not flip readiness back.
    await skeleton.mark_serving()
    assert await check(stub) == NOT_SERVING
    assert await check(stub, LIVENESS_SERVICE) == SERVING
    # Stopping ends the stream at once instead of holding the stop for its grace.
    started = time.monotonic()
    await skeleton.stop(grace=10)
    assert time.monotonic() - started < 5
    assert await watch.read() is grpc.aio.EOF
    assert await watch.code() == grpc.StatusCode.OK


async def test_watch_of_an_unknown_service_streams_service_unknown(
    server: tuple[Server, Any],
) -> None:
    _, stub = server
    watch = stub.Watch(health_pb2.HealthCheckRequest(service="later.Service"))
    assert (await watch.read()).status == SERVICE_UNKNOWN
    watch.cancel()


async def test_drain_keeps_answering_for_its_delay(server: tuple[Server, Any]) -> None:
    skeleton, stub = server
    await skeleton.mark_serving()
    draining = asyncio.create_task(skeleton.drain(delay=0.5))
    assert await check(stub) == NOT_SERVING  # answered while the delay runs
    assert not draining.done()
    await draining


async def test_library_servicer_behind_the_interceptor_watches_and_lists_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stock grpc_health servicer (Watch writes with context.write; List is the generated
    stub that raises) works through the interceptor: Watch streams, List is UNIMPLEMENTED
    without an ERROR log."""
    server = grpc.aio.server(interceptors=[ServerInterceptor()])
    servicer = library_health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
            assert (await watch.read()).status == SERVING
            await servicer.set("", NOT_SERVING)
            assert (await watch.read()).status == NOT_SERVING
            watch.cancel()
            with caplog.at_level(logging.INFO), pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.List(LIST_REQUEST, timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await server.stop(None)
