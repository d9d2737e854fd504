"""Webhooks from real tasks: create with a webhook URL through the gateway, task-store's lifecycle
queues each wanted status change, the notifier delivers it signed to a loopback receiver that
verifies it with the ``standardwebhooks`` library, once per event. With a media store, the
succeeded event carries a working URL of the stored image."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import httpx
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from genhub.notifier.delivery_log import DeliveryLog
from genhub.v1 import task_pb2
from tests.integration.media.conftest import URL_KEY, s3_media
from tests.integration.notifier.conftest import Receiver, new_secret
from tests.support.stack import start_stack
from tests.support.tasks import S, image_request, text_request, wait_status
from tests.support.waiting import eventually

LOOPBACK = "127.0.0.0/8"  # the receiver is local, as an in-cluster one would be


async def _delivered(log: DeliveryLog, task_id: str, count: int) -> None:
    async def outcomes() -> list[str]:
        return [a.outcome for a in await log.for_task(task_id)]

    await eventually(outcomes, lambda o: o.count("delivered") >= count, what=f"{count} deliveries")


def _events(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every received event, each verified (raises on a bad signature)."""
    hook = Webhook(secret)
    return [
        hook.verify(r.body, r.headers) | {"_id": r.headers["webhook-id"]} for r in receiver.received
    ]


async def test_terminal_event_of_a_task_arrives_once_signed(
    vhost: str, database: str, receiver: Receiver
) -> None:
    secret = new_secret()
    async with start_stack(
        vhost, database, webhook_secrets=[secret], egress_allow=LOOPBACK
    ) as stack:
        request = text_request("hello hooks", webhook=S.Webhook(url=receiver.url))
        created = (await stack.tasks.CreateTextTask(request)).task
        done = await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED})
        assert stack.deliveries is not None
        await _delivered(stack.deliveries, done.task_id, 1)
    events = _events(receiver, secret)
    assert [e["type"] for e in events] == ["task.succeeded"]
    assert events[0]["data"]["taskId"] == done.task_id
    assert events[0]["data"]["result"]["text"] == done.result.text
    assert events[0]["_id"] == f"msg_{done.task_id}_succeeded_1"


async def test_every_status_change_arrives_once_with_a_working_media_url(
    vhost: str, database: str, s3_bucket: str, receiver: Receiver
) -> None:
    secret = new_secret()
    media = s3_media(s3_bucket, media_url_keys=SecretStr(URL_KEY))
    async with start_stack(
        vhost, database, webhook_secrets=[secret], egress_allow=LOOPBACK, media=media, rest=True
    ) as stack:
        hook = S.Webhook(url=receiver.url, events=task_pb2.WEBHOOK_EVENTS_ALL)
        created = (await stack.tasks.CreateImageTask(image_request(webhook=hook))).task
        done = await wait_status(stack.tasks, created.task_id, {S.TASK_STATUS_SUCCEEDED})
        assert stack.deliveries is not None
        await _delivered(stack.deliveries, done.task_id, 3)
        events = _events(receiver, secret)
        assert Counter(e["type"] for e in events) == {
            "task.queued": 1,
            "task.running": 1,
            "task.succeeded": 1,
        }
        assert len({e["_id"] for e in events}) == 3
        (succeeded,) = [e for e in events if e["type"] == "task.succeeded"]
        image = succeeded["data"]["result"]["images"][0]
        assert image["media"]["sha256"] == done.result.images[0].media.sha256
        async with httpx.AsyncClient(base_url=stack.rest_url, timeout=5) as http:
            png = await http.get(image["url"])
        assert png.status_code == 200
        assert hashlib.sha256(png.content).hexdigest() == image["media"]["sha256"]
