"""The sweep's questions answered by task-store, the owner of tasks: which files a task
references (``GetTask``; NOT_FOUND means the task is gone) and "its files expired"
(``ExpireTask``). The media store never decides about tasks itself."""

from __future__ import annotations

from genhub.common.errors import FailedPrecondition, NotFound
from genhub.common.store_client import TaskStoreClient
from genhub.v1 import task_pb2


def referenced_media(task: task_pb2.Task) -> frozenset[str]:
    """The media ids a task's result references (images and video)."""
    entries: list[task_pb2.GeneratedImage | task_pb2.GeneratedVideo] = list(task.result.images)
    if task.result.HasField("video"):
        entries.append(task.result.video)
    return frozenset(e.media.media_id for e in entries if e.media.media_id)


class TaskStoreOwners:
    """``genhub.media.Owners`` over a task-store client. A task-store failure other than
    NOT_FOUND propagates, which stops the sweep."""

    def __init__(self, client: TaskStoreClient) -> None:
        self._client = client

    async def media_of(self, owner: str) -> frozenset[str] | None:
        """The media ids task ``owner`` references; None when it does not exist."""
        try:
            return referenced_media(await self._client.get(owner))
        except NotFound:
            return None

    async def expire(self, owner: str) -> None:
        """ExpireTask; a task that is not succeeded (already expired, failed with leftovers) or
        is gone needs nothing."""
        try:
            await self._client.expire(owner)
        except (FailedPrecondition, NotFound):
            return
