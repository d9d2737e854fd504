"""Fault suite, part 2: the infrastructure fails under load. RabbitMQ and FerretDB restart,
Redis stops and comes back, while a client keeps creating tasks and workers keep running them.

These servers are private to this module (``tests/support/private_infra.py``: the same binaries
on free ports), so restarting them disturbs nobody else's tests. Each test checks that clients
got clear errors or succeeded, services reconnected by themselves, every acknowledged task
succeeded with exactly one result, and provider calls (the demo provider's call log) match.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from genhub.common.secrets import SecretBox
from genhub.v1 import task_service_pb2_grpc
from tests.support.call_log import most_at_once, read_calls
from tests.support.faults import Load, all_succeed, check_one_result_each, metric
from tests.support.private_infra import PrivateInfra, private_infra
from tests.support.service_fleet import Services, running_services
from tests.support.tasks import S, text_request
from tests.support.waiting import eventually

# A broker that goes away mid-conversation leaves aio-pika's dead socket writers to the garbage
# collector, which warns about them; that is the fault being injected, not a leak of ours.
pytestmark = [
    pytest.mark.faults,
    pytest.mark.filterwarnings(
        "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
    ),
]
MAX_JOBS = 3  # the demo provider's concurrent-job limit in these tests


class World:
    """Private servers, the services on them, a gateway client and the call log."""

    def __init__(self, infra: PrivateInfra, services: Services, call_log: Path) -> None:
        self.infra = infra
        self.services = services
        self.call_log = call_log
        self.channel = grpc.aio.insecure_channel(services.gateway_addr)
        self.tasks: task_service_pb2_grpc.TaskServiceAsyncStub = (
            task_service_pb2_grpc.TaskServiceStub(self.channel)
        )

    async def fail_opens(self) -> float:
        port = self.services.metrics_ports["worker"]
        return await metric(port, "genhub_rate_limit_fail_open_total", limiter="provider")


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("infra-faults")
    call_log = root / "calls.tsv"
    async with private_infra(root) as servers:
        env = {
            "GENHUB_AMQP_URL": servers.amqp_url,
            "GENHUB_REDIS_URL": servers.redis_url,
            "GENHUB_MONGO_URL": servers.mongo_url,
            "GENHUB_MONGO_DB": "genhub",
            "GENHUB_SECRETS_KEYS": SecretBox.generate_key(),
            "GENHUB_DEMO_CALL_LOG": str(call_log),
            "GENHUB_CONCURRENCY": "8",
            "GENHUB_PROVIDER_MAX_CONCURRENT_JOBS": str(MAX_JOBS),
            "GENHUB_LEASE_SECONDS": "20",
            "GENHUB_BACKOFF_BASE_SECONDS": "0.2",
            "GENHUB_BACKOFF_CAP_SECONDS": "2",
            "GENHUB_CATALOGUE_TTL_SECONDS": "0.5",
            # The outbox relay retries unsent messages every half second (instead of ten).
            "GENHUB_RELAY_HEARTBEAT_SECONDS": "0.5",
            "GENHUB_REAP_INTERVAL_SECONDS": "2",
        }
        async with running_services(
            env, root / "logs", servers.amqp_url, {"worker": {}}
        ) as services:
            running = World(servers, services, call_log)
            yield running
            await running.channel.close()
    gc.collect()  # the dead connections, while this module's warning filter applies


async def _under_load(world: World, label: str, fault: asyncio.Task[None]) -> Load:
    """Keep creating tasks before, during and after ``fault``; returns the finished load."""
    load = Load(world.tasks, label, prompt="[sleep:200]", pace=0.15)
    running = asyncio.create_task(load.run())
    try:
        await eventually(load.created, lambda n: n >= 4, timeout=30, what="load under way")
        fault_started = len(load.acknowledged)
        await fault
        # Creates succeed after the fault: the services reconnected by themselves.
        await eventually(
            load.created, lambda n: n >= fault_started + 4, timeout=60, what="creates again"
        )
    finally:
        load.stop()
        await running
    return load


async def _nothing_lost(world: World, load: Load) -> None:
    assert load.unclear_errors() == []
    ids = [t.task_id for t in load.acknowledged.values()]
    assert len(set(ids)) == len(ids)  # one task per idempotency key, retries included
    done = await all_succeed(world.tasks, ids, timeout=90)
    check_one_result_each(done, world.call_log)


async def test_a_rabbitmq_restart_while_tasks_are_created_and_run_loses_nothing(
    world: World,
) -> None:
    restart = asyncio.create_task(world.infra.rabbitmq.restart(pause=1.0))
    load = await _under_load(world, "broker", restart)
    await _nothing_lost(world, load)


async def test_a_store_restart_under_load_loses_nothing(world: World) -> None:
    restart = asyncio.create_task(world.infra.ferretdb.restart(pause=1.0))
    load = await _under_load(world, "store", restart)
    await _nothing_lost(world, load)


async def test_without_redis_the_core_path_works_and_limits_fail_open_then_resume(
    world: World,
) -> None:
    await world.infra.redis.stop()
    try:
        before = await world.fail_opens()
        tasks = [
            (await world.tasks.CreateTextTask(text_request(f"no redis {i} [sleep:100]"))).task
            for i in range(4)
        ]
        # The synchronous mode still answers: with no status events it polls the store.
        waited = await world.tasks.CreateTextTask(
            text_request("wait without redis", wait=duration_pb2.Duration(seconds=20))
        )
        assert waited.task.status == S.TASK_STATUS_SUCCEEDED
        done = await all_succeed(world.tasks, [t.task_id for t in tasks])
        check_one_result_each([*done, waited.task], world.call_log)
        assert await world.fail_opens() > before  # counted ...
        log = world.services.logs / "worker.log"
        assert "rate limits fail open" in log.read_text()  # ... and logged
    finally:
        await world.infra.redis.start()

    # Redis is back. The worker's first calls may still find its old connections dead (and fail
    # open once more, by design); once a task has gone through, the limit holds again.
    probe = (await world.tasks.CreateTextTask(text_request("redis back, probe"))).task
    await all_succeed(world.tasks, [probe.task_id])
    after = await world.fail_opens()
    again = [
        (await world.tasks.CreateTextTask(text_request(f"redis back {i} [sleep:500]"))).task
        for i in range(8)
    ]
    done = await all_succeed(world.tasks, [t.task_id for t in again])
    check_one_result_each(done, world.call_log)
    assert most_at_once(read_calls(world.call_log), [t.task_id for t in again]) == MAX_JOBS
    assert await world.fail_opens() == after
