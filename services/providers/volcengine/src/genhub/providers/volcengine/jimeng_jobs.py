"""Jimeng requests and results: the submit form per task, the GetResult form, and reading the
finished job (provider-apis.md §2.3).

The task's model is the Jimeng ``req_key``. Images: ``prompt``, ``seed``, ``width``/``height``
(from ``size``) and reference images (``image_urls`` for https URLs, ``binary_data_base64`` for
data: URLs); the watermark goes in GetResult's ``req_json.logo_info``. Videos: ``prompt``,
``seed``, ``aspect_ratio``, a first frame like a reference image, and ``frames`` (24 per second
+ 1) for models whose catalogue entry offers a choice of durations.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from genhub.providers.sdk import (
    Call,
    EmptyResult,
    Finished,
    InvalidParameter,
    JobFailed,
    Pending,
    Submitted,
)
from genhub.providers.volcengine import media
from genhub.providers.volcengine.jimeng import GET_RESULT, SUBMIT, JimengClients, result_form
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)
RUNNING = frozenset({"in_queue", "generating"})
GONE = frozenset({"not_found", "expired"})
FRAMES_PER_SECOND = 24


def _add_images(form: dict[str, Any], images: list[str]) -> None:
    urls = [u for u in images if not u.startswith("data:")]
    inline = [u.partition(",")[2] for u in images if u.startswith("data:")]
    if urls:
        form["image_urls"] = urls
    if inline:
        form["binary_data_base64"] = inline


def submit_form(call: Call) -> dict[str, Any]:
    """The ``CVSync2AsyncSubmitTask`` body for a task.

    Raises:
        InvalidParameter: the task asks for something Jimeng does not take (a negative prompt).
    """
    task = call.task
    form: dict[str, Any] = {"req_key": task.model}
    if task.WhichOneof("spec") == "image":
        spec = task.image
        if spec.negative_prompt:
            raise InvalidParameter(
                f"{task.model} takes no negative prompt (image.negative_prompt)",
                code="UNSUPPORTED_PARAMETER",
            )
        form["prompt"] = spec.prompt
        width, height = media.parse_size(spec.size)
        if width:
            form["width"], form["height"] = width, height
        _add_images(form, list(spec.reference_images))
    else:
        spec_v = task.video
        form["prompt"] = spec_v.prompt
        if spec_v.aspect_ratio:
            form["aspect_ratio"] = spec_v.aspect_ratio
        if spec_v.first_frame_image:
            _add_images(form, [spec_v.first_frame_image])
        if spec_v.duration_seconds and len(call.model.durations_seconds) > 1:
            form["frames"] = FRAMES_PER_SECOND * spec_v.duration_seconds + 1
    seed_owner = task.image if task.WhichOneof("spec") == "image" else task.video
    if seed_owner.HasField("seed"):
        form["seed"] = seed_owner.seed
    return form


def _req_json(task: task_pb2.Task) -> dict[str, Any]:
    if task.WhichOneof("spec") != "image":
        return {}
    spec = task.image
    wanted: dict[str, Any] = {
        "return_url": spec.response_format != task_pb2.IMAGE_RESPONSE_FORMAT_B64_JSON
    }
    if spec.HasField("watermark"):
        wanted["logo_info"] = {"add_logo": spec.watermark}
    return wanted


async def submit(clients: JimengClients, call: Call, poll_after: float) -> Submitted:
    """Submit the job; returns Jimeng's task id without waiting."""
    reply = await clients.call(call, SUBMIT, submit_form(call), job=False)
    data = reply.body.get("data") or {}
    job_id = str(data.get("task_id") or "")
    if not job_id:
        raise EmptyResult(
            "Jimeng accepted the job without a task_id",
            request_id=str(reply.body.get("request_id") or ""),
        )
    return Submitted(job_id, poll_after=poll_after)


async def poll(
    clients: JimengClients, call: Call, job_id: str, poll_after: float
) -> Finished | Pending:
    """Ask for the job's result.

    Raises:
        JobFailed: Jimeng no longer knows the job (not_found, expired): a retry submits anew.
        EmptyResult: done without an image or video.
        ProviderError: the job's own failure (content risk, internal error) or the request's.
    """
    form = result_form(call.task.model, job_id, _req_json(call.task))
    reply = await clients.call(call, GET_RESULT, form, job=True)
    request_id = str(reply.body.get("request_id") or "")
    data = reply.body.get("data") or {}
    status = str(data.get("status") or "")
    if status in RUNNING:
        return Pending(poll_after=poll_after)
    if status in GONE:
        raise JobFailed(
            f"Jimeng job {job_id} is {status}", code=status.upper(), request_id=request_id
        )
    if status != "done":
        log.warning("unknown Jimeng job status %r; polling again", status)
        return Pending(poll_after=poll_after)
    if call.task.WhichOneof("spec") == "image":
        return _images(call.task, data, request_id)
    return _video(call, data, request_id)


def _extra_urls(data: dict[str, Any]) -> list[str]:
    # Some answers carry a JSON string resp_data with "urls" instead (provider-apis.md §2.3).
    raw = data.get("resp_data")
    if isinstance(raw, str) and raw:
        try:
            urls = json.loads(raw).get("urls")
        except (ValueError, AttributeError):
            return []
        return [u for u in urls if isinstance(u, str)] if isinstance(urls, list) else []
    return []


def _images(task: task_pb2.Task, data: dict[str, Any], request_id: str) -> Finished:
    urls = [u for u in (data.get("image_urls") or []) if u] or _extra_urls(data)
    encoded = [b for b in (data.get("binary_data_base64") or []) if b]
    want_b64 = task.image.response_format == task_pb2.IMAGE_RESPONSE_FORMAT_B64_JSON
    result = task_pb2.TaskResult(provider_request_id=request_id)
    if encoded and (want_b64 or not urls):
        for item in encoded:
            info = media.sniff_b64(item)
            if want_b64:
                result.images.add(
                    b64_data=item, mime_type=info.mime_type, width=info.width, height=info.height
                )
            else:  # only bytes came back: hand them out inline
                result.images.add(
                    url=f"data:{info.mime_type or 'image/jpeg'};base64,{item}",
                    mime_type=info.mime_type,
                    width=info.width,
                    height=info.height,
                )
    else:
        # The bytes, when they came too, tell each URL's type and size.
        infos = [media.sniff_b64(item) for item in encoded] if len(encoded) == len(urls) else []
        for i, url in enumerate(urls):
            info = infos[i] if infos else media.ImageInfo(media.mime_from_url(url))
            result.images.add(
                url=url,
                mime_type=info.mime_type or media.mime_from_url(url),
                width=info.width,
                height=info.height,
            )
    if not result.images:
        raise EmptyResult(
            f"Jimeng job done without an image for {task.model}",
            request_id=request_id,
            job_failed=True,
        )
    return Finished(result, task_pb2.Usage(images=len(result.images)))


def _video(call: Call, data: dict[str, Any], request_id: str) -> Finished:
    url = str(data.get("video_url") or "") or next(iter(_extra_urls(data)), "")
    if not url:
        raise EmptyResult(
            f"Jimeng job done without a video for {call.task.model}",
            request_id=request_id,
            job_failed=True,
        )
    durations = list(call.model.durations_seconds)
    seconds = call.task.video.duration_seconds or (durations[0] if durations else 0)
    return Finished(
        task_pb2.TaskResult(
            video=task_pb2.GeneratedVideo(url=url, mime_type="video/mp4", duration_seconds=seconds),
            provider_request_id=request_id,
        ),
        task_pb2.Usage(video_seconds=seconds),
    )
