"""Stored media in webhook payloads: an event's task carries references only (task-store never
signs URLs), so the notifier fills fresh time-limited URLs into the payload at each delivery
attempt, the way the gateway does on every read. A retry hours later carries URLs that still
work; the ``webhook-id`` stays the same, so receivers still deduplicate."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from google.protobuf import json_format

from genhub.media import MediaError, MediaStore, link_result
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)
BodyFilter = Callable[[str], Awaitable[str]]


def linker(store: MediaStore) -> BodyFilter:
    """A body filter for ``DeliveryConsumer(prepare=...)`` that links ``store``'s files."""

    async def link(body: str) -> str:
        """``body`` with URLs for the stored files of a succeeded task; else unchanged."""
        payload = json.loads(body)
        data = payload.get("data")
        if not isinstance(data, dict) or data.get("status") != "TASK_STATUS_SUCCEEDED":
            return body
        task = json_format.ParseDict(data, task_pb2.Task(), ignore_unknown_fields=True)
        stored = [i for i in task.result.images if i.media.media_id]
        if not stored and not task.result.video.media.media_id:
            return body
        try:
            await link_result(task.result, store)
        except MediaError as exc:  # deliver the references rather than not at all
            log.warning("webhook sent without media URLs: %s", exc.message)
            return body
        payload["data"] = json_format.MessageToDict(task)
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    return link
