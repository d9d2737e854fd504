"""Which status changes a webhook receives, and the event each one becomes."""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf import json_format

from genhub.v1 import task_pb2

S = task_pb2
TERMINAL = frozenset({S.TASK_STATUS_SUCCEEDED, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELLED})
_TYPE = {
    S.TASK_STATUS_PENDING: "task.pending",
    S.TASK_STATUS_QUEUED: "task.queued",
    S.TASK_STATUS_RUNNING: "task.running",
    S.TASK_STATUS_SUCCEEDED: "task.succeeded",
    S.TASK_STATUS_FAILED: "task.failed",
    S.TASK_STATUS_CANCELLED: "task.cancelled",
    S.TASK_STATUS_EXPIRED: "task.expired",
}


@dataclass(frozen=True)
class WebhookEvent:
    """One event to deliver: ``event_id`` is the ``webhook-id`` (stable across retries, so a
    receiver deduplicates by it); ``body`` the JSON payload, fixed when the event is made."""

    event_id: str
    task_id: str
    url: str
    type: str
    body: str
    attempt: int = 0  # deliveries tried so far

    def encode(self) -> bytes:
        """The queue message body."""
        return json.dumps(self.__dict__).encode()

    @classmethod
    def decode(cls, data: bytes) -> WebhookEvent:
        """Parse a queue message body; ValueError when it is not one of ours."""
        try:
            raw = json.loads(data)
            return cls(
                str(raw["event_id"]),
                str(raw["task_id"]),
                str(raw["url"]),
                str(raw["type"]),
                str(raw["body"]),
                int(raw.get("attempt", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a webhook event: {exc}") from exc


def wanted(task: task_pb2.Task) -> bool:
    """Whether ``task``'s webhook asked for its current status."""
    if not task.HasField("webhook") or not task.webhook.url:
        return False
    if task.webhook.events == S.WEBHOOK_EVENTS_ALL:
        return task.status in _TYPE
    return task.status in TERMINAL


def event_for(task: task_pb2.Task) -> WebhookEvent:
    """The event of ``task``'s current status.

    Payload (Standard Webhooks' recommended shape): ``{"type": "task.succeeded",
    "timestamp": <update_time, RFC 3339>, "data": <the task in the REST API's JSON>}``. The id
    is ``msg_<task_id>_<status>_<attempts>``: the same change notified twice (a redelivered
    lifecycle message) yields the same id, so receivers see it once.
    """
    kind = _TYPE[task.status]
    data = json_format.MessageToDict(task)
    data.pop("webhook", None)  # the receiver knows where it is
    payload = {"type": kind, "timestamp": task.update_time.ToJsonString(), "data": data}
    status = S.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_").lower()
    return WebhookEvent(
        event_id=f"msg_{task.task_id}_{status}_{task.attempts}",
        task_id=task.task_id,
        url=task.webhook.url,
        type=kind,
        body=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
    )
