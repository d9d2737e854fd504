"""Seedance video jobs through Ark: ``/contents/generations/tasks`` (provider-apis.md §1.7).

create -> ``{"id": "cgt-..."}``; get -> ``status`` queued | running | succeeded | failed |
cancelled | expired, with ``content.video_url`` once succeeded; delete cancels a queued job (a
running one cannot be cancelled at Ark and finishes; finished ones are deleted).
Output settings go as top-level fields (``resolution``, ``ratio``, ``duration``, ``seed``),
which SDK 5.0.54 sends and Ark's current docs describe; a first frame goes as an
``image_url`` content item with role ``first_frame``.
"""

from __future__ import annotations

import logging
from typing import Any

from volcenginesdkarkruntime import AsyncArk
from volcenginesdkarkruntime._exceptions import ArkNotFoundError

from genhub.providers.sdk import (
    BadOutput,
    Call,
    ContentRefused,
    EmptyResult,
    Finished,
    JobFailed,
    Pending,
    ProviderError,
    Submitted,
)
from genhub.providers.volcengine.ark import ArkClients, drop_none
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)
RUNNING = frozenset({"queued", "running"})


async def submit_video(ark: ArkClients, call: Call, poll_after: float) -> Submitted:
    """Create the job; returns its id without waiting.

    Raises:
        ProviderError: the mapped Ark error; BadOutput if Ark answers without a job id.
    """
    spec = call.task.video
    content: list[dict[str, Any]] = [{"type": "text", "text": spec.prompt}]
    if spec.first_frame_image:
        content.append(
            {
                "type": "image_url",
                "image_url": {"url": spec.first_frame_image},
                "role": "first_frame",
            }
        )
    kwargs = drop_none(
        {
            "resolution": spec.resolution or None,
            "ratio": spec.aspect_ratio or None,
            "duration": spec.duration_seconds or None,
            "seed": spec.seed if spec.HasField("seed") else None,
        }
    )

    async def request(client: AsyncArk, headers: dict[str, str]) -> Any:
        return await client.content_generation.tasks.create(
            model=call.task.model, content=content, extra_headers=headers, **kwargs
        )

    created, request_id = await ark.call(call, request)
    job_id = getattr(created, "id", None)
    if not job_id:
        raise BadOutput("Ark accepted the video job without an id", request_id=request_id)
    return Submitted(str(job_id), poll_after=poll_after)


def _gone(exc: ArkNotFoundError) -> ProviderError:
    return JobFailed(
        "the Ark video job is gone (deleted or older than 7 days)",
        code="JOB_NOT_FOUND",
        request_id=exc.response.headers.get("x-request-id", ""),
    )


async def poll_video(
    ark: ArkClients, call: Call, job_id: str, poll_after: float
) -> Finished | Pending:
    """Check the job.

    Raises:
        JobFailed: it failed, expired, was cancelled or is gone (a retry submits a new one).
        ContentRefused: Ark's filter refused the prompt, input image or output video.
        EmptyResult: it succeeded without a video URL.
    """

    async def request(client: AsyncArk, headers: dict[str, str]) -> Any:
        return await client.content_generation.tasks.get(task_id=job_id, extra_headers=headers)

    job, _ = await ark.call(call, request, not_found=_gone)
    status = str(getattr(job, "status", "") or "")
    if status in RUNNING:
        return Pending(poll_after=poll_after)
    if status == "succeeded":
        content = getattr(job, "content", None)
        url = str(getattr(content, "video_url", "") or "")
        if not url:
            raise EmptyResult(
                "Ark's video job succeeded without a video URL", request_id=job_id, job_failed=True
            )
        seconds = int(getattr(job, "duration", 0) or call.task.video.duration_seconds or 0)
        return Finished(
            task_pb2.TaskResult(
                video=task_pb2.GeneratedVideo(
                    url=url, mime_type="video/mp4", duration_seconds=seconds
                ),
                provider_request_id=job_id,
            ),
            task_pb2.Usage(
                video_seconds=seconds,
                output_tokens=int(
                    getattr(getattr(job, "usage", None), "completion_tokens", 0) or 0
                ),
            ),
        )
    error = getattr(job, "error", None)
    code = str(getattr(error, "code", "") or status.upper() or "UNKNOWN")
    message = str(getattr(error, "message", "") or f"the Ark video job ended {status}")
    if "Sensitive" in code:
        raise ContentRefused(message, code=code, request_id=job_id)
    if status in ("failed", "expired", "cancelled"):
        raise JobFailed(message, code=code, request_id=job_id)
    log.warning("unknown Ark job status %r; polling again", status)
    return Pending(poll_after=poll_after)


async def cancel_video(ark: ArkClients, call: Call, job_id: str) -> None:
    """Delete the job at Ark (cancels it while queued; a running job cannot be cancelled).

    Raises:
        ProviderError: Ark refused (e.g. the job is already running).
    """

    async def request(client: AsyncArk, headers: dict[str, str]) -> Any:
        return await client.content_generation.tasks.delete(job_id, extra_headers=headers)

    try:
        await ark.call(call, request, not_found=_gone)
    except JobFailed as exc:
        if exc.code != "JOB_NOT_FOUND":
            raise
        log.info("Ark video job %s was already gone", job_id)
