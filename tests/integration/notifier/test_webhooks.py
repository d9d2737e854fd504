"""Webhooks end to end on real RabbitMQ (own vhost), FerretDB (own database) and a loopback
receiver that verifies every signature with the ``standardwebhooks`` library."""

from __future__ import annotations

import asyncio
import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from genhub.notifier import topology
from genhub.notifier.delivery_log import DeliveryLog
from genhub.notifier.notifier import WebhookNotifier
from genhub.v1 import task_pb2
from tests.integration.notifier.conftest import Consumers, Receiver, new_secret
from tests.support import infra
from tests.support.http_server import StaticResolver
from tests.support.waiting import eventually

S = task_pb2
QUEUE = "genhub.webhooks"


def _task(
    url: str,
    status: task_pb2.TaskStatus.ValueType = S.TASK_STATUS_SUCCEEDED,
    events: task_pb2.WebhookEvents.ValueType = S.WEBHOOK_EVENTS_UNSPECIFIED,
    task_id: str = "t1",
) -> task_pb2.Task:
    task = S.Task(task_id=task_id, provider="demo", model="demo-image", status=status, attempts=1)
    task.webhook.url = url
    task.webhook.events = events
    task.update_time.GetCurrentTime()
    return task


async def _received(receiver: Receiver, n: int, timeout: float = 10) -> None:
    async def count() -> int:
        return len(receiver.received)

    await eventually(count, lambda c: c >= n, timeout=timeout, what=f"{n} deliveries")


async def test_terminal_event_is_delivered_once_and_verifies(
    vhost: str, receiver: Receiver, consumers: Consumers, delivery_log: DeliveryLog
) -> None:
    secret = new_secret()
    consumers.start([secret], [0.5])
    async with WebhookNotifier(infra.amqp_url(vhost), schedule=[0.5]) as notifier:
        assert not await notifier.notify(_task(receiver.url, S.TASK_STATUS_RUNNING))
        assert await notifier.notify(_task(receiver.url))
    await _received(receiver, 1)
    hit = receiver.received[0]
    payload = Webhook(secret).verify(hit.body, hit.headers)
    assert payload["type"] == "task.succeeded"
    assert payload["data"]["taskId"] == "t1"
    assert "webhook" not in payload["data"]
    assert hit.headers["webhook-id"] == "msg_t1_succeeded_1"
    attempts = await eventually(lambda: delivery_log.for_task("t1"), lambda a: len(a) == 1)
    assert (attempts[0].outcome, attempts[0].status_code, attempts[0].attempt) == (
        "delivered",
        200,
        1,
    )
    # Nothing else arrives (the running status was filtered out, the success sent once).
    await asyncio.sleep(0)  # let any stray delivery be scheduled
    assert await infra.queue_depth(vhost, QUEUE) == 0
    assert len(receiver.received) == 1


async def test_every_status_change_when_asked(
    vhost: str, receiver: Receiver, consumers: Consumers
) -> None:
    secret = new_secret()
    consumers.start([secret], [0.5])
    async with WebhookNotifier(infra.amqp_url(vhost), schedule=[0.5]) as notifier:
        for status in (S.TASK_STATUS_QUEUED, S.TASK_STATUS_RUNNING, S.TASK_STATUS_FAILED):
            assert await notifier.notify(_task(receiver.url, status, S.WEBHOOK_EVENTS_ALL))
    await _received(receiver, 3)
    types = sorted(Webhook(secret).verify(r.body, r.headers)["type"] for r in receiver.received)
    assert types == ["task.failed", "task.queued", "task.running"]


async def test_retries_with_backoff_after_500_and_301(
    vhost: str, receiver: Receiver, consumers: Consumers, delivery_log: DeliveryLog
) -> None:
    secret = new_secret()
    schedule = [0.4, 0.8, 1.6]
    receiver.script = [500, 301]
    consumers.start([secret], schedule)
    async with WebhookNotifier(infra.amqp_url(vhost), schedule=schedule) as notifier:
        await notifier.notify(_task(receiver.url))
    await _received(receiver, 3)
    hits = receiver.received
    assert {h.headers["webhook-id"] for h in hits} == {"msg_t1_succeeded_1"}
    for hit in hits:  # each attempt signed afresh
        Webhook(secret).verify(hit.body, hit.headers)
    assert hits[1].at - hits[0].at >= 0.4
    assert hits[2].at - hits[1].at >= 0.8
    assert receiver.followed == 0  # the 301 was a failure, not followed
    attempts = await eventually(lambda: delivery_log.for_task("t1"), lambda a: len(a) == 3)
    assert [(a.attempt, a.outcome, a.status_code) for a in attempts] == [
        (1, "retrying", 500),
        (2, "retrying", 301),
        (3, "delivered", 200),
    ]
    assert all(a.next_attempt_at is not None for a in attempts[:2])


async def test_retries_run_out_into_the_dead_queue(
    vhost: str, receiver: Receiver, consumers: Consumers, delivery_log: DeliveryLog
) -> None:
    receiver.script = [503, 503, 503]
    consumers.start([new_secret()], [0.2])
    async with WebhookNotifier(infra.amqp_url(vhost), schedule=[0.2]) as notifier:
        await notifier.notify(_task(receiver.url))
    attempts = await eventually(lambda: delivery_log.for_task("t1"), lambda a: len(a) == 2)
    assert [a.outcome for a in attempts] == ["retrying", "failed"]

    async def dead() -> int:
        return await infra.queue_depth(vhost, topology.dead_queue(QUEUE))

    assert await eventually(dead, lambda n: n == 1) == 1
    assert len(receiver.received) == 2


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://hooks.example.com/x", "ftp://a.example/x"],
)
async def test_ssrf_targets_are_refused_not_called(
    vhost: str, consumers: Consumers, delivery_log: DeliveryLog, url: str
) -> None:
    from genhub.egress import EgressPolicy

    resolver = StaticResolver({"hooks.example.com": ["10.1.2.3"]})
    consumers.start([new_secret()], [0.2], policy=EgressPolicy(), resolver=resolver)
    async with WebhookNotifier(infra.amqp_url(vhost), schedule=[0.2]) as notifier:
        await notifier.notify(_task(url))
    attempts = await eventually(lambda: delivery_log.for_task("t1"), lambda a: len(a) == 1)
    assert attempts[0].outcome == "refused"
    assert attempts[0].status_code == 0
    assert "refused" in attempts[0].error


async def test_restart_of_the_delivering_process_loses_nothing(
    vhost: str, receiver: Receiver, consumers: Consumers, delivery_log: DeliveryLog
) -> None:
    secret = new_secret()
    receiver.hold = asyncio.Event()
    first = consumers.start([secret], [0.3])
    async with WebhookNotifier(infra.amqp_url(vhost), schedule=[0.3]) as notifier:
        await notifier.notify(_task(receiver.url, task_id="held"))
        await _received(receiver, 1)  # the first consumer is mid-delivery ...
        await consumers.crash(first)  # ... and dies without acknowledging
        receiver.hold.set()
        receiver.hold = None
        # More events while no consumer runs: they wait in the durable queue.
        for n in range(3):
            await notifier.notify(_task(receiver.url, task_id=f"later{n}"))
    consumers.start([secret], [0.3])
    await _received(receiver, 5)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids.count("msg_held_succeeded_1") == 2  # redelivered, same id for deduplication
    assert {f"msg_later{n}_succeeded_1" for n in range(3)} <= set(ids)
    delivered = await eventually(
        lambda: delivery_log.for_task("held"), lambda a: any(x.outcome == "delivered" for x in a)
    )
    assert delivered[-1].status_code == 200


async def test_rotated_secrets_both_verify_during_overlap(
    vhost: str, receiver: Receiver, consumers: Consumers
) -> None:
    old, new = new_secret(), new_secret()
    consumers.start([new, old], [0.3])
    async with WebhookNotifier(infra.amqp_url(vhost), schedule=[0.3]) as notifier:
        await notifier.notify(_task(receiver.url))
    await _received(receiver, 1)
    hit = receiver.received[0]
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(hit.body, hit.headers)["data"]["taskId"] == "t1"
    assert Webhook(new).verify(hit.body, hit.headers)["data"]["taskId"] == "t1"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(hit.body, hit.headers)
    assert json.loads(hit.body)["type"] == "task.succeeded"
