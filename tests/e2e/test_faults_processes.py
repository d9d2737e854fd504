"""Fault suite, part 1: services as real processes on the shared infrastructure (their own vhost,
database and key prefix), killed, stopped and fed bad or repeated input while they work. Each
test checks that nothing is lost (every acknowledged task succeeds) and nothing is duplicated
(exactly one result per task; provider calls counted by the demo provider's call log)."""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from genhub.common import topology
from genhub.common.secrets import SecretBox
from genhub.common.topology import TaskMessage
from genhub.v1 import task_service_pb2, task_service_pb2_grpc
from tests.support import infra
from tests.support.call_log import count, read_calls
from tests.support.faults import (
    Load,
    all_succeed,
    check_one_result_each,
    metric,
    publish_raw,
    waiting_messages,
)
from tests.support.service_fleet import Services, running_services
from tests.support.tasks import S, text_request, wait_status
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults


class World:
    """The running services, a client of the gateway and the provider call log."""

    def __init__(self, services: Services, call_log: Path, amqp_url: str) -> None:
        self.services = services
        self.call_log = call_log
        self.amqp_url = amqp_url
        self.channel = grpc.aio.insecure_channel(services.gateway_addr)
        self.tasks: task_service_pb2_grpc.TaskServiceAsyncStub = (
            task_service_pb2_grpc.TaskServiceStub(self.channel)
        )

    def workers(self) -> list[str]:
        return [
            n for n, s in self.services.services.items() if n.startswith("worker") and s.process
        ]


@pytest.fixture(scope="module")
async def world(
    infrastructure: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    name = "tf" + secrets.token_hex(5)
    root = tmp_path_factory.mktemp("faults")
    call_log = root / "calls.tsv"
    await infra.create_vhost(name)
    env = {
        "GENHUB_AMQP_URL": infra.amqp_url(name),
        "GENHUB_REDIS_URL": infra.REDIS_URL,
        "GENHUB_MONGO_URL": infra.MONGO_URL,
        "GENHUB_MONGO_DB": name,
        "GENHUB_EVENTS_PREFIX": f"{name}:",
        "GENHUB_SECRETS_KEYS": SecretBox.generate_key(),
        "GENHUB_DEMO_CALL_LOG": str(call_log),
        "GENHUB_CONCURRENCY": "10",
        "GENHUB_LEASE_SECONDS": "20",
        "GENHUB_MAX_ATTEMPTS": "5",
        "GENHUB_BACKOFF_BASE_SECONDS": "0.2",
        "GENHUB_BACKOFF_CAP_SECONDS": "2",
        "GENHUB_DRAIN_GRACE_SECONDS": "15",
        "GENHUB_CATALOGUE_TTL_SECONDS": "0.5",
        "GENHUB_RELAY_HEARTBEAT_SECONDS": "1",
        "GENHUB_REAP_INTERVAL_SECONDS": "2",
    }
    try:
        # worker-1, killed by the first test, holds short leases so its runs are taken over
        # soon; the others' leases let a run ride out a task-store restart (the rolling test).
        workers = {"worker-1": {"GENHUB_LEASE_SECONDS": "4"}, "worker-2": {}}
        async with running_services(env, root / "logs", infra.amqp_url(name), workers) as services:
            running = World(services, call_log, infra.amqp_url(name))
            yield running
            await running.channel.close()
    finally:
        await infra.delete_vhost(name)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.MONGO_URL)
        await mongo.drop_database(name)
        await mongo.close()


async def _create(world: World, prompt: str, **fields: Any) -> Any:
    return (await world.tasks.CreateTextTask(text_request(prompt, **fields))).task


async def test_sigkill_a_worker_in_the_middle_of_50_running_tasks(world: World) -> None:
    tasks = await asyncio.gather(*(_create(world, f"kill {i} [sleep:2000]") for i in range(50)))
    ids = [t.task_id for t in tasks]
    # Both workers full (ten calls each), thirty tasks waiting: kill one mid-call.
    await eventually(
        lambda: asyncio.to_thread(read_calls, world.call_log),
        lambda events: sum(e.event == "start" and e.task_id in ids for e in events) >= 20,
        timeout=30,
        what="twenty calls in progress",
    )
    victim = world.services.services["worker-1"]
    killed_pid = victim.pid
    assert await world.services.stop("worker-1", signal.SIGKILL) == -signal.SIGKILL
    await world.services.add_worker("worker-3")

    done = await all_succeed(world.tasks, ids, timeout=90)
    started = check_one_result_each(done, world.call_log)
    events = read_calls(world.call_log)
    cut = {e.task_id for e in events if e.pid == killed_pid and e.event == "start"} - {
        e.task_id for e in events if e.pid == killed_pid and e.event == "end"
    }
    assert cut, "the worker was killed between calls"
    # The runs cut short were run again, once; every other task was called exactly once.
    assert {i for i, n in started.items() if n == 2} == cut
    assert all(n == 1 for i, n in started.items() if i not in cut)
    queues = await waiting_messages(world.amqp_url)
    assert queues[topology.work_queue("demo")] == 0
    assert queues[topology.dead_queue("demo")] == 0


async def test_a_rolling_restart_of_every_service_loses_no_task(world: World) -> None:
    load = Load(world.tasks, "roll", prompt="[sleep:300]")
    running = asyncio.create_task(load.run())
    exits: dict[str, int] = {}
    try:
        await eventually(
            load.created,
            lambda n: n >= 5,
            timeout=20,
            what="load under way",
        )
        for name in ["taskstore", "gateway", *world.workers()]:
            exits[name] = await world.services.restart(name)
            before = len(load.acknowledged)

            def three_more(n: int, seen: int = before) -> bool:
                return n >= seen + 3

            await eventually(
                load.created,
                three_more,
                timeout=60,
                what=f"creates succeed again after restarting {name}",
            )
    finally:
        load.stop()
        await running
    # Every service stopped cleanly within its grace (a rolling update), none crashed.
    assert set(exits.values()) == {0}, exits
    assert load.unclear_errors() == []
    ids = [t.task_id for t in load.acknowledged.values()]
    assert len(set(ids)) == len(ids)  # one task per idempotency key, retries included
    done = await all_succeed(world.tasks, ids, timeout=90)
    # A run whose worker could not reach task-store for longer than it rides out (half its
    # lease) is handed back and runs again; every other task was called exactly once.
    check_one_result_each(done, world.call_log)


async def test_a_poison_message_is_dead_lettered_without_blocking_the_queue(world: World) -> None:
    dead_before = (await waiting_messages(world.amqp_url))[topology.dead_queue("demo")]
    await publish_raw(world.amqp_url, b"\xff\xfe this is not a task message")
    tasks = [await _create(world, f"after the poison {i}") for i in range(5)]
    done = await all_succeed(world.tasks, [t.task_id for t in tasks])
    check_one_result_each(done, world.call_log)
    queues = await eventually(
        lambda: waiting_messages(world.amqp_url),
        lambda q: q[topology.dead_queue("demo")] == dead_before + 1,
        what="the poison message dead-lettered",
    )
    assert queues[topology.work_queue("demo")] == 0


async def test_100_concurrent_duplicate_creates_make_one_task(world: World) -> None:
    request = text_request("once only", idempotency_key="same-key", user_id="dup-user")
    answers = await asyncio.gather(
        *(world.tasks.CreateTextTask(request) for _ in range(100)), return_exceptions=True
    )
    failures = [a for a in answers if isinstance(a, BaseException)]
    assert failures == []
    ids = {a.task.task_id for a in answers if not isinstance(a, BaseException)}
    assert len(ids) == 1
    listed = await world.tasks.ListTasks(task_service_pb2.ListTasksRequest(user_id="dup-user"))
    assert [t.task_id for t in listed.tasks] == list(ids)
    done = await all_succeed(world.tasks, ids)
    assert check_one_result_each(done, world.call_log) == {done[0].task_id: 1}


async def _leased_skips(world: World) -> float:
    ports = [world.services.metrics_ports[name] for name in world.workers()]
    skips = [
        await metric(port, "genhub_worker_skipped_messages_total", reason="leased")
        for port in ports
    ]
    return sum(skips)


async def test_a_duplicate_delivery_of_a_running_task_does_not_call_the_provider_twice(
    world: World,
) -> None:
    task = await _create(world, "duplicated [sleep:2500]")
    await wait_status(world.tasks, task.task_id, {S.TASK_STATUS_RUNNING})
    skipped = await _leased_skips(world)
    for _ in range(3):  # a redelivery, a republish, an operator's requeue
        await publish_raw(world.amqp_url, TaskMessage(task.task_id).encode())
    # Each copy meets the live run's lease: held back (deferred until the lease would lapse,
    # by when the task has finished and any copy is skipped), never a second call.
    await eventually(
        lambda: _leased_skips(world), lambda n: n >= skipped + 3, what="the copies held back"
    )
    (done,) = await all_succeed(world.tasks, [task.task_id])
    assert count(read_calls(world.call_log), "start", [task.task_id])[task.task_id] == 1
    assert done.attempts == 1
    check_one_result_each([done], world.call_log)
