"""The task-store channel spreads calls over every address its target resolves to, and a server
with a maximum connection age keeps answering across the reconnects it causes (so clients reach
task-store replicas added by a scale-up: docs/operations.md, "Scaling task-store")."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import grpc

from genhub.common import store_client
from genhub.common.server import Server
from genhub.store.v1 import task_store_pb2 as pb
from genhub.store.v1 import task_store_pb2_grpc
from genhub.v1 import task_pb2


class _Answering(task_store_pb2_grpc.TaskStoreServiceServicer):
    def __init__(self, name: str, seen: Counter[str]) -> None:
        self._name = name
        self._seen = seen

    async def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.GetTaskResponse:
        self._seen[self._name] += 1
        return pb.GetTaskResponse(task=task_pb2.Task(task_id=request.task_id, user_id=self._name))


async def _server(
    name: str, seen: Counter[str], max_age: float | None = None
) -> tuple[Server, int]:
    server = Server(["genhub.store.v1.TaskStoreService"], max_connection_age=max_age)
    answering = _Answering(name, seen)  # type: ignore[abstract]  # only GetTask is called
    task_store_pb2_grpc.add_TaskStoreServiceServicer_to_server(answering, server.grpc)
    port = server.bind("127.0.0.1:0")
    await server.start()
    return server, port


async def test_calls_are_spread_over_every_address_of_the_target() -> None:
    seen: Counter[str] = Counter()
    (a, port_a), (b, port_b) = await _server("a", seen), await _server("b", seen)
    target = f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}"
    try:
        async with store_client.connect(target) as client:
            owners = [(await client.get(f"t{n}")).user_id for n in range(40)]
        # pick_first (gRPC's default) would send all 40 to one server.
        assert set(owners) == {"a", "b"} and min(seen.values()) >= 10, seen
    finally:
        await a.grpc.stop(None)
        await b.grpc.stop(None)


async def test_calls_keep_succeeding_across_connections_closed_for_age() -> None:
    seen: Counter[str] = Counter()
    server, port = await _server("a", seen, max_age=0.2)
    try:
        async with store_client.connect(f"127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 1.5  # several connection lifetimes
            calls = 0
            while time.monotonic() < deadline:
                assert (await client.get(f"t{calls}")).task_id == f"t{calls}"
                calls += 1
                await asyncio.sleep(0.01)  # pacing the calls, not waiting for a condition
        assert seen["a"] == calls and calls > 20
    finally:
        await server.grpc.stop(None)
