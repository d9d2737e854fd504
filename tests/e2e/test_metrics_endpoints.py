"""Each service as its own process serves /metrics on a non-loopback bind (every interface, as
in a pod), in a format ``promtool check metrics`` accepts, with the series its work produced.

The scrape itself goes to 127.0.0.1: this workplace allows traffic to loopback only, and the
machine's own interface addresses are private-range ones. That the listener is not loopback-only
is checked in the kernel's socket table instead (/proc/net/tcp: bound to 0.0.0.0).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genhub.common.secrets import SecretBox
from genhub.v1 import task_service_pb2_grpc
from tests.support import infra
from tests.support.processes import ServiceProcess, service
from tests.support.proxy import free_port
from tests.support.tasks import S, text_request, wait_status

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) of IPv4 listeners on ``port``."""
    found = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        address, _, hex_port = fields[1].partition(":")
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
            found.add(address)
    return found


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(process: ServiceProcess) -> tuple[str, Samples]:
    """The /metrics text of ``process`` and its samples by (name, sorted labels)."""
    bound = await process.logged("metrics serving")
    port = int(bound["port"])
    assert bound["address"] == "0.0.0.0:0"
    assert listening_addresses(port) == {"00000000"}, "metrics must listen on every interface"
    async with httpx.AsyncClient(timeout=5) as http:
        reply = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert reply.status_code == 200
    promtool = await asyncio.create_subprocess_exec(
        PROMTOOL,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    report, _ = await promtool.communicate(reply.content)
    assert promtool.returncode == 0, report.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }
    return reply.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(
        v for (n, found), v in samples.items() if n == name and set(labels.items()) <= set(found)
    )


@contextlib.asynccontextmanager
async def stack(vhost: str, database: str) -> AsyncIterator[dict[str, Any]]:
    """task-store, a demo worker and the gateway, each its own process, metrics on 0.0.0.0."""
    common = {
        "GENHUB_AMQP_URL": infra.amqp_url(vhost),
        "GENHUB_REDIS_URL": infra.REDIS_URL,
        "GENHUB_MONGO_URL": infra.MONGO_URL,
        "GENHUB_MONGO_DB": database,
        "GENHUB_EVENTS_PREFIX": f"{database}:",
        "GENHUB_SECRETS_KEYS": SecretBox.generate_key(),
        "GENHUB_METRICS_LISTEN": "0.0.0.0:0",
        "GENHUB_LOG_LEVEL": "INFO",
        "GENHUB_QUEUE_METRICS_SECONDS": "0.2",
    }
    store = f"127.0.0.1:{free_port()}"
    gateway = f"127.0.0.1:{free_port()}"
    rest = f"127.0.0.1:{free_port()}"
    # All three start at once (imports dominate start-up); task-store clients wait for it.
    async with contextlib.AsyncExitStack() as running:
        taskstore = await running.enter_async_context(
            service(["genhub.taskstore"], common | {"GENHUB_TASKSTORE_LISTEN": store})
        )
        worker = await running.enter_async_context(
            service(
                ["genhub.dispatcher", "--provider", "demo"],
                common | {"GENHUB_TASKSTORE_ADDR": store, "GENHUB_HEALTH_LISTEN": "127.0.0.1:0"},
            )
        )
        front = await running.enter_async_context(
            service(
                ["genhub.gateway"],
                common
                | {
                    "GENHUB_TASKSTORE_ADDR": store,
                    "GENHUB_GATEWAY_LISTEN": gateway,
                    "GENHUB_REST_LISTEN": rest,
                },
            )
        )
        await taskstore.logged("task-store serving", timeout=60)
        await worker.logged("worker consuming", timeout=60)
        await front.logged("REST serving", timeout=60)
        yield {
            "taskstore": taskstore,
            "worker": worker,
            "gateway": front,
            "grpc": gateway,
            "rest": f"http://{rest}",
        }


@pytest.fixture
async def services(vhost: str, database: str) -> AsyncIterator[dict[str, Any]]:
    async with stack(vhost, database) as running:
        yield running


async def test_every_service_exposes_checked_metrics_on_every_interface(
    services: dict[str, Any],
) -> None:
    async with grpc.aio.insecure_channel(services["grpc"]) as channel:
        tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        created = (await tasks.CreateTextTask(text_request("count me"))).task
        await wait_status(tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED}, timeout=20)
    async with httpx.AsyncClient(base_url=services["rest"], timeout=5) as http:
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get(f"/api/v1/ai/tasks/{created.task_id}")).status_code == 200

    _, gateway = await scrape(services["gateway"])
    assert (
        value(
            gateway,
            "grpc_server_handled_total",
            grpc_service="genhub.v1.TaskService",
            grpc_method="CreateTextTask",
            grpc_type="unary",
            grpc_code="OK",
        )
        == 1
    )
    assert (
        value(
            gateway,
            "grpc_server_handling_seconds_count",
            grpc_service="genhub.v1.TaskService",
            grpc_method="GetTask",
        )
        >= 1
    )

    assert (
        value(gateway, "http_server_requests_total", method="GET", route="readyz", code="200") == 1
    )
    assert value(gateway, "http_server_request_duration_seconds_count", method="GET") == 2

    _, store = await scrape(services["taskstore"])
    assert (
        value(
            store,
            "grpc_server_handled_total",
            grpc_service="genhub.store.v1.TaskStoreService",
            grpc_code="OK",
        )
        >= 3
    )

    # Task series: counted once, by task-store's transition hook.
    labels = {"provider": "demo", "model": "demo-text", "type": "text"}
    assert value(store, "genhub_tasks_created_total", priority="default", **labels) == 1
    assert value(store, "genhub_tasks_finished_total", status="succeeded", **labels) == 1
    assert value(store, "genhub_task_queue_wait_seconds_count", provider="demo") == 1
    assert value(store, "genhub_task_end_to_end_seconds_count", provider="demo") == 1
    assert value(store, "genhub_store_writes_total") >= 3
    # Queue gauges, also task-store's: the demo queue, drained, with the worker consuming.
    queue = {"provider": "demo", "queue": "genhub.tasks.demo"}
    assert value(store, "genhub_queue_consumers", **queue) == 1
    assert value(store, "genhub_queue_depth", **queue) == 0

    # Worker series: its metrics hook.
    _, worker = await scrape(services["worker"])
    assert value(worker, "genhub_worker_concurrency_limit", provider="demo") == 4
    assert value(worker, "genhub_worker_in_flight", provider="demo") == 0
    assert value(worker, "genhub_provider_call_seconds_count", provider="demo") >= 1
    assert value(worker, "genhub_tasks_finished_total") == 0  # not double-counted here
