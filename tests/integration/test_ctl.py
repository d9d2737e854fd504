"""genhubctl against the real stack: each command as an operator runs it (Typer's CliRunner in a
worker thread, so the stack keeps running in the test's event loop), and the installed script."""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import aio_pika
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient
from typer.main import get_command
from typer.testing import CliRunner, Result

from genhub.common import topology
from genhub.common.breaker import RedisBreaker
from genhub.common.provider_client import seal_credentials
from genhub.common.provider_limits import ProviderLimiter, ProviderLimits
from genhub.common.ratelimit import RedisLimiter
from genhub.common.secrets import SecretBox
from genhub.common.topology import TaskMessage
from genhub.ctl.__main__ import main
from genhub.ctl.app import app
from tests.support import infra
from tests.support.documents import insert_task
from tests.support.limits import drop_prefix
from tests.support.stack import Stack
from tests.support.tasks import S, text_request, wait_status
from tests.support.waiting import eventually

RUNNER = CliRunner()
MANAGEMENT = infra.MANAGEMENT.replace("http://", "http://guest:guest@")


def _args(stack: Stack) -> list[str]:
    return [
        "--addr", stack.gateway_addr,
        "--vhost", stack.vhost,
        "--amqp-url", infra.amqp_url(stack.vhost),
        "--rabbitmq-api", MANAGEMENT,
        "--redis-url", infra.REDIS_URL,
        "--redis-prefix", f"{stack.database}:",
    ]  # fmt: skip


async def ctl(stack: Stack, *args: str, stdin: str | None = None) -> Result:
    """Run genhubctl with the stack's addresses."""
    return await asyncio.to_thread(RUNNER.invoke, app, [*_args(stack), *args], input=stdin)


async def ctl_json(stack: Stack, *args: str) -> Any:
    """Run genhubctl --json and parse its output; fails on a non-zero exit."""
    result = await ctl(stack, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Typer's command objects (it vendors click): a group has ``commands``.
    found = [path]
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_every_command_has_help() -> None:
    commands = _commands(get_command(app))
    assert ("tasks", "watch") in commands
    assert ("dlq", "purge") in commands
    assert ("keys", "revoke") in commands
    for path in commands:
        result = RUNNER.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_the_console_script_is_installed() -> None:
    (entry,) = entry_points(group="console_scripts", name="genhubctl")
    assert entry.value == "genhub.ctl.__main__:main"
    assert entry.load() is main
    assert (Path(sys.executable).parent / "genhubctl").is_file()


async def test_tasks_get_list_watch_cancel(stack: Stack) -> None:
    done = (await stack.tasks.CreateTextTask(text_request("ctl", user_id="ctl-user"))).task
    await wait_status(stack.tasks, done.task_id, {S.TASK_STATUS_SUCCEEDED})
    got = await ctl_json(stack, "tasks", "get", done.task_id)
    assert (got["taskId"], got["status"]) == (done.task_id, "TASK_STATUS_SUCCEEDED")
    listed = await ctl_json(stack, "tasks", "list", "--user", "ctl-user", "--type", "text")
    assert [t["taskId"] for t in listed["tasks"]] == [done.task_id]
    table = await ctl(stack, "tasks", "list", "--user", "ctl-user")
    assert done.task_id in table.stdout
    assert "succeeded" in table.stdout
    watched = await ctl(stack, "--json", "tasks", "watch", done.task_id)
    assert watched.exit_code == 0
    last = json.loads(watched.stdout.strip().splitlines()[-1])
    assert last["status"] == "TASK_STATUS_SUCCEEDED"

    slow = (await stack.tasks.CreateTextTask(text_request("slow [sleep:5000]"))).task
    cancelled = await ctl_json(stack, "tasks", "cancel", slow.task_id)
    assert cancelled["status"] == "TASK_STATUS_CANCELLED"
    again = await ctl(stack, "tasks", "cancel", slow.task_id)
    assert again.exit_code == 1
    assert "FAILED_PRECONDITION" in again.stderr
    missing = await ctl(stack, "tasks", "get", "01zzzzzzzzzzzzzzzzzzzzzzzz")
    assert (missing.exit_code, missing.stderr.split(":")[0]) == (1, "error")


async def test_queues_show_the_provider_queue_and_its_consumers(stack: Stack) -> None:
    rows = await eventually(
        lambda: ctl_json(stack, "queues"),
        lambda r: bool(r) and r[0]["consumers"] >= 1,
        timeout=15,
        what="the demo queue with its worker",
    )
    assert rows[0]["provider"] == "demo"
    assert {"ready", "unacked", "delayed", "dead", "publish_rate"} <= set(rows[0])


async def _dead_letter(stack: Stack, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(infra.amqp_url(stack.vhost))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.DEAD_EXCHANGE)
        for body in bodies:
            await exchange.publish(aio_pika.Message(body, priority=2), routing_key="demo")


async def test_dlq_list_show_requeue_purge(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # A task whose message was dead-lettered while it was still queued (e.g. a broker
    # mishap), and a poison message.
    stranded_id = await insert_task(mongo, stack.database, "stranded")
    stranded = await stack.store.get(stranded_id)
    token = seal_credentials(
        SecretBox([stack.secrets_keys]), S.ProviderCredentials(api_key="sk-request-0123456789")
    )
    sealed = TaskMessage(stranded.task_id, credentials=token).encode()
    await _dead_letter(stack, [sealed, b"\xff not json"])
    dead = topology.dead_queue("demo")
    await eventually(
        lambda: infra.queue_depth(stack.vhost, dead), lambda n: n == 2, what="two dead letters"
    )
    listed = await eventually(
        lambda: ctl_json(stack, "dlq", "list"),
        lambda rows: bool(rows) and rows[0]["messages"] == 2,
        timeout=15,
        what="the management API's count",
    )
    assert listed[0]["queue"] == dead
    shown = await ctl(stack, "--json", "dlq", "show", "demo")
    assert shown.exit_code == 0
    assert token not in shown.stdout  # credentials, even sealed, are never printed
    rows = json.loads(shown.stdout)
    assert rows[0]["task_id"] == stranded.task_id
    assert rows[1].get("undecodable") is True
    assert await infra.queue_depth(stack.vhost, dead) == 2  # show only peeks

    refused = await ctl(stack, "dlq", "purge", "demo", stdin="n\n")
    assert refused.exit_code == 1  # aborted at the prompt
    assert await infra.queue_depth(stack.vhost, dead) == 2

    # The stranded task's letter goes back to its queue (credentials and all); the poison one
    # cannot run anywhere, so it stays.
    moved = await ctl_json(stack, "dlq", "requeue", "demo")
    assert moved == {"provider": "demo", "retried": 0, "requeued": 1, "dropped": 0, "kept": 1}
    await wait_status(stack.tasks, stranded.task_id, {S.TASK_STATUS_SUCCEEDED})
    assert await infra.queue_depth(stack.vhost, dead) == 1

    purged = await ctl(stack, "dlq", "purge", "demo", "--yes")
    assert purged.exit_code == 0, purged.output
    assert await infra.queue_depth(stack.vhost, dead) == 0


async def test_failed_tasks_are_retried_by_tasks_retry_and_dlq_requeue(stack: Stack) -> None:
    done = (await stack.tasks.CreateTextTask(text_request("done before"))).task
    await wait_status(stack.tasks, done.task_id, {S.TASK_STATUS_SUCCEEDED})
    client = aioredis.Redis.from_url(infra.REDIS_URL)
    breaker = RedisBreaker(client, prefix=f"{stack.database}:")
    try:
        # An outage: the provider's quota ran out, so its breaker opened and tasks fail fast.
        await breaker.record("demo", "demo-text", "quota_exhausted")
        failed = [
            (await stack.tasks.CreateTextTask(text_request(f"during {i}"))).task for i in range(2)
        ]
        for task in failed:
            refused = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_FAILED})
            assert refused.error.code == "PROVIDER_CIRCUIT_OPEN"
        await _dead_letter(stack, [TaskMessage(done.task_id).encode()])  # a stale letter
        dead = topology.dead_queue("demo")
        await eventually(
            lambda: infra.queue_depth(stack.vhost, dead), lambda n: n == 3, what="3 letters"
        )
        await breaker.record("demo", "demo-text", None)  # the provider is back
    finally:
        await drop_prefix(client, f"{stack.database}:")
        await client.aclose()

    again = await ctl_json(stack, "tasks", "retry", failed[0].task_id)
    assert again["status"] == "TASK_STATUS_QUEUED"
    refused_retry = await ctl(stack, "tasks", "retry", done.task_id)
    assert refused_retry.exit_code == 1 and "FAILED_PRECONDITION" in refused_retry.stderr

    # The first task's letter now belongs to a queued (or finished) task; the second is retried;
    # the succeeded task's letter is dropped.
    moved = await ctl_json(stack, "dlq", "requeue", "demo")
    assert moved["retried"] == 1 and moved["kept"] == 0
    assert moved["requeued"] + moved["dropped"] == 2
    for task in failed:
        finished = await wait_status(stack.tasks, task.task_id, {S.TASK_STATUS_SUCCEEDED})
        assert finished.attempts == 1
    assert await infra.queue_depth(stack.vhost, topology.dead_queue("demo")) == 0


async def test_keys_and_users(stack: Stack) -> None:
    user = await ctl_json(stack, "users", "create", "ops@example.com", "--name", "Ops")
    assert (await ctl_json(stack, "users", "find", "OPS@example.com"))["userId"] == user["userId"]
    created = await ctl_json(stack, "keys", "create", "--user", user["userId"], "--role", "admin")
    key_id = created["apiKey"]["keyId"]
    assert created["key"].startswith(f"gh_live_{key_id}_")
    assert created["apiKey"]["role"] == "ROLE_ADMIN"
    shown = await ctl(stack, "keys", "create", "--user", user["userId"])
    assert "shown once" in shown.stdout
    listing = await ctl(stack, "--json", "keys", "list", "--user", user["userId"])
    assert created["key"] not in listing.stdout
    assert key_id in {k["keyId"] for k in json.loads(listing.stdout)}
    revoked = await ctl_json(stack, "keys", "revoke", key_id)
    assert "revokeTime" in revoked
    live = await ctl_json(stack, "keys", "list", "--user", user["userId"])
    assert key_id not in {k["keyId"] for k in live}
    gone = await ctl(stack, "users", "delete", user["userId"], "--yes")
    assert gone.exit_code == 0
    assert (await ctl(stack, "users", "get", user["userId"])).exit_code == 1


async def test_providers_show_breaker_state_and_jobs_in_flight(stack: Stack) -> None:
    client = aioredis.Redis.from_url(infra.REDIS_URL)
    prefix = f"{stack.database}:"
    try:
        breaker = RedisBreaker(client, prefix=prefix)
        await breaker.record("demo", "demo-image", "quota_exhausted", retry_after=60)
        limiter = ProviderLimiter(
            RedisLimiter(client, prefix=prefix), {"demo": ProviderLimits(max_concurrent_jobs=5)}
        )
        assert await limiter.acquire("demo", "t1")
        rows = await ctl_json(stack, "providers")
        by_model = {r["model"]: r for r in rows}
        assert by_model["demo-image"]["breaker"] == "open"
        assert 50 < by_model["demo-image"]["probe_in_seconds"] <= 60
        assert by_model["demo-text"]["breaker"] == "closed"
        assert by_model["demo-text"]["in_flight"] == 1
        table = await ctl(stack, "providers")
        assert "open" in table.stdout
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()
