"""Sora video jobs: ``POST /videos`` (create), ``GET /videos/{id}`` (retrieve), ``GET
/videos/{id}/content`` (download) and ``DELETE /videos/{id}`` (on cancel).

GenHub's video spec names an aspect ratio and a resolution; the API takes a size string. Sora
offers four sizes only (720x1280, 1280x720 on sora-2; also 1024x1792, 1792x1024 on
sora-2-pro), so 16:9 and 9:16 are mapped and there is no 1:1.

The finished video is not copied here: the content endpoint answers the MP4 bytes only with the
account's key, and task documents must not carry megabytes. The adapter checks that the content
is really an MP4 (its first bytes) and records the content URL plus the job id; the worker's
media store then copies the bytes through the adapter (``OpenAIProvider.media_stream``, which
reads them with the key), since a plain download of that URL is refused (401).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types import Video

from genhub.providers.openai.errors import CONTENT_CODES
from genhub.providers.sdk import (
    BadOutput,
    Call,
    ContentRefused,
    EmptyResult,
    Finished,
    InvalidParameter,
    JobFailed,
    Pending,
    Submitted,
)
from genhub.v1 import task_pb2

# (aspect ratio, resolution) -> the API's size string.
SIZES = {
    ("16:9", "720p"): "1280x720",
    ("9:16", "720p"): "720x1280",
    ("16:9", "1024p"): "1792x1024",
    ("9:16", "1024p"): "1024x1792",
}
_POLL_AFTER_HEADER = "openai-poll-after-ms"
_CONTENT_PATH = re.compile(r"videos/([A-Za-z0-9_-]+)/content")


def create_params(call: Call) -> dict[str, Any]:
    """The ``videos.create`` keyword arguments for a task (the API's defaults fill the rest).

    Raises:
        InvalidParameter: no Sora size for the aspect ratio and resolution, or a first frame
            was given (the adapter does not upload reference images).
    """
    spec = call.task.video
    if spec.first_frame_image:
        raise InvalidParameter(
            f"{call.task.provider}: {call.task.model} takes no first frame here",
            code="FIRST_FRAME_UNSUPPORTED",
        )
    params: dict[str, Any] = {"model": call.task.model, "prompt": spec.prompt}
    if spec.duration_seconds:
        params["seconds"] = str(spec.duration_seconds)
    if spec.aspect_ratio or spec.resolution:
        wanted = (spec.aspect_ratio or "16:9", spec.resolution or "720p")
        size = SIZES.get(wanted)
        if size is None:
            raise InvalidParameter(
                f"{call.task.provider}: no video size for aspect ratio {wanted[0]} at "
                f"{wanted[1]} (sizes: {', '.join(sorted(SIZES.values()))})",
                code="UNSUPPORTED_SIZE",
            )
        params["size"] = size
    return params


def _failure(call: Call, video: Video, request_id: str) -> Exception:
    error = video.error
    code = error.code if error is not None else ""
    message = error.message if error is not None else ""
    text = f"{call.task.provider}: video job {video.id} failed: {message or 'no reason given'}"
    if code in CONTENT_CODES:
        return ContentRefused(text, code=code, request_id=request_id)
    return JobFailed(text, code=code or "JOB_FAILED", request_id=request_id)


async def submit(client: openai.AsyncOpenAI, call: Call, poll_after: float) -> Submitted:
    """Create the job; never waits for it."""
    raw = await client.videos.with_raw_response.create(**create_params(call))
    video = raw.parse()
    if video.status == "failed":
        raise _failure(call, video, raw.headers.get("x-request-id") or "")
    return Submitted(video.id, poll_after=poll_after)


async def poll(
    client: openai.AsyncOpenAI, call: Call, job_id: str, poll_after: float
) -> Finished | Pending:
    """Check the job; when completed, check its content and return the content URL.

    Raises:
        JobFailed: the job failed at the provider (a retry submits a new one).
        ContentRefused: the job was stopped by moderation.
        BadOutput: the content is not an MP4.
    """
    raw = await client.videos.with_raw_response.retrieve(job_id)
    video = raw.parse()
    request_id = raw.headers.get("x-request-id") or ""
    if video.status in ("queued", "in_progress"):
        hinted = raw.headers.get(_POLL_AFTER_HEADER)
        try:
            after = float(hinted) / 1000 if hinted else poll_after
        except ValueError:
            after = poll_after
        return Pending(poll_after=after)
    if video.status != "completed":
        raise _failure(call, video, request_id)
    await _check_content(client, call, job_id, request_id)
    seconds = (
        int(video.seconds) if str(video.seconds).isdigit() else call.task.video.duration_seconds
    )
    return Finished(
        task_pb2.TaskResult(
            video=task_pb2.GeneratedVideo(
                url=content_url(client, job_id),
                mime_type="video/mp4",
                duration_seconds=seconds,
            ),
            provider_request_id=request_id,
        ),
        task_pb2.Usage(video_seconds=seconds),
    )


async def _check_content(
    client: openai.AsyncOpenAI, call: Call, job_id: str, request_id: str
) -> None:
    # Read only the first chunk: an MP4 starts with an ISO-BMFF "ftyp" box.
    async with client.videos.with_streaming_response.download_content(job_id) as response:
        head = b""
        async for chunk in response.iter_bytes(64):
            head += chunk
            if len(head) >= 12:
                break
    if not head:
        raise EmptyResult(
            f"{call.task.provider}: video {job_id} completed without content",
            request_id=request_id,
            job_failed=True,
        )
    if head[4:8] != b"ftyp":
        raise BadOutput(
            f"{call.task.provider}: video {job_id} content is not an MP4", request_id=request_id
        )


def content_url(client: openai.AsyncOpenAI, job_id: str) -> str:
    """The content endpoint of job ``job_id`` under the client's base URL (no secret in it)."""
    return f"{client.base_url}videos/{job_id}/content"


def content_job_id(client: openai.AsyncOpenAI, url: str) -> str | None:
    """The job whose content endpoint ``url`` is, under this client's base URL; None for any
    other URL (so the account's key is never sent to another host)."""
    base = str(client.base_url)
    if not url.startswith(base):
        return None
    match = _CONTENT_PATH.fullmatch(url.removeprefix(base))
    return match.group(1) if match else None


async def download(client: openai.AsyncOpenAI, job_id: str) -> AsyncIterator[bytes]:
    """The job's MP4 in chunks, read with the account's key (``GET /videos/{id}/content``)."""
    async with client.videos.with_streaming_response.download_content(job_id) as response:
        async for chunk in response.iter_bytes():
            yield chunk


async def cancel(client: openai.AsyncOpenAI, job_id: str) -> None:
    """Delete the job (a job already gone is fine)."""
    try:
        await client.videos.delete(job_id)
    except openai.NotFoundError:
        return
