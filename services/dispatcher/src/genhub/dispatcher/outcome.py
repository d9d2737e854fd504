"""Checks on what an adapter returned, before it is stored."""

from __future__ import annotations

from genhub.providers.sdk import EmptyResult, Finished
from genhub.v1 import task_pb2


def check_output(task: task_pb2.Task, finished: Finished) -> None:
    """Raise a retryable error when the output is empty: an empty result is never a success."""
    result = finished.result
    kind = task.WhichOneof("spec")
    if kind == "image":
        empty = not result.images or any(not (i.url or i.b64_data) for i in result.images)
    elif kind == "video":
        empty = not result.video.url
    else:
        empty = not result.text.strip()
    if empty:
        raise EmptyResult(
            f"provider returned no {kind} output", code="EMPTY_RESULT", job_failed=True
        )
