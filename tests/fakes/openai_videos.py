"""The Sora part of the OpenAI fake: video jobs, their states, and their MP4 content.

A job is ``queued`` for the first third of its render time, ``in_progress`` until the render
time has passed, then ``completed`` (or ``failed`` when its prompt asks for ``[video-fail]``).
Retrieve answers ``openai-poll-after-ms`` with the time left (at most 500 ms), as the API hints its
poll helper.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from genhub.providers.demo.render import render_video
from tests.fakes.openai_faults import Directives, Fault, error_response, invalid, parse, within

SIZES = {"sora-2": ("720x1280", "1280x720")}
ALL_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
SECONDS = ("4", "8", "12")


@dataclass
class VideoJob:
    """A Sora job; its state follows from the time since creation."""

    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    created: float
    render_seconds: float
    fail: bool = False
    deleted: bool = False

    def status(self, now: float) -> tuple[str, int]:
        """(status, progress %) at monotonic time ``now``."""
        elapsed = now - self.created
        if elapsed < self.render_seconds / 3:
            return "queued", 0
        if elapsed < self.render_seconds:
            return "in_progress", int(100 * elapsed / self.render_seconds)
        return ("failed", 100) if self.fail else ("completed", 100)

    def as_json(self) -> dict[str, Any]:
        """The Video object, every key present."""
        status, progress = self.status(time.monotonic())
        error = None
        if status == "failed":
            error = {"code": "video_generation_failed", "message": "The render failed (fake)."}
        now = int(time.time())
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": status,
            "progress": progress,
            "created_at": now,
            "completed_at": now if status == "completed" else None,
            "expires_at": None,
            "seconds": self.seconds,
            "size": self.size,
            "prompt": self.prompt,
            "remixed_from_video_id": None,
            "error": error,
        }


async def _broken_stream() -> AsyncIterator[bytes]:
    """A body that breaks off: the connection closes before any byte of the video."""
    raise ConnectionResetError("the fake drops the connection mid-body")
    yield b""  # makes this an async generator


class VideoStore:
    """The fake's video jobs; ``counts`` is the fake's counter."""

    def __init__(self, counts: Counter[str], render_seconds: float) -> None:
        self.jobs: dict[str, VideoJob] = {}
        self.render_seconds = render_seconds
        self._counts = counts
        self._mp4: dict[tuple[str, str, str], bytes] = {}

    def create(
        self, body: dict[str, Any], wanted: Directives, call: int, request_id: str
    ) -> Response:
        """``POST /v1/videos`` after the prompt's directives passed."""
        model = str(body.get("model") or "sora-2")
        seconds = str(body.get("seconds") or "4")
        size = str(body.get("size") or "720x1280")
        fault: Fault | None = None
        if seconds not in SECONDS:
            fault = invalid(f"Invalid seconds '{seconds}'; use one of {list(SECONDS)}.", "seconds")
        elif size not in SIZES.get(model, ALL_SIZES):
            fault = invalid(f"Invalid size '{size}' for {model}.", "size")
        if fault is not None:
            return error_response(fault, request_id)
        job = VideoJob(
            id=f"video_{secrets.token_hex(12)}",
            model=model,
            prompt=str(body["prompt"]),
            seconds=seconds,
            size=size,
            created=time.monotonic(),
            render_seconds=(
                wanted.render_ms / 1000 if wanted.render_ms is not None else self.render_seconds
            ),
            fail=wanted.video_fail and within(wanted.video_fail_times, call),
        )
        self.jobs[job.id] = job
        self._counts["video.submitted"] += 1
        return JSONResponse(job.as_json())

    def _find(self, video_id: str, request_id: str) -> VideoJob | Response:
        job = self.jobs.get(video_id)
        if job is None or job.deleted:
            fault = Fault.of(
                404, code="video_not_found", message=f"Video with id '{video_id}' not found."
            )
            return error_response(fault, request_id)
        return job

    def retrieve(self, video_id: str, request_id: str) -> Response:
        """``GET /v1/videos/{id}``."""
        job = self._find(video_id, request_id)
        if isinstance(job, Response):
            return job
        left = job.created + job.render_seconds - time.monotonic()
        # The hint is capped, as a real server's would be for a render of minutes.
        hint = min(500, max(50, int(left * 1000)))
        headers = {"openai-poll-after-ms": str(hint)} if left > 0 else {}
        return JSONResponse(job.as_json(), headers=headers)

    def delete(self, video_id: str, request_id: str) -> Response:
        """``DELETE /v1/videos/{id}``."""
        job = self._find(video_id, request_id)
        if isinstance(job, Response):
            return job
        job.deleted = True
        self._counts["video.deleted"] += 1
        return JSONResponse({"id": job.id, "object": "video.deleted", "deleted": True})

    async def content(self, video_id: str, variant: str, request_id: str) -> Response:
        """``GET /v1/videos/{id}/content``: the MP4, at a quarter of the job's size."""
        job = self._find(video_id, request_id)
        if isinstance(job, Response):
            return job
        if job.status(time.monotonic())[0] != "completed":
            fault = invalid("Video is not ready yet.", "video_id", "video_not_ready")
            return error_response(fault, request_id)
        if variant != "video":
            fault = invalid("Only the video variant is served (fake).", "variant")
            return error_response(fault, request_id)
        wanted = parse(job.prompt)
        if wanted.garbage:
            page = b"<html><body>Service temporarily unavailable</body></html>"
            return Response(page, media_type="text/html")
        if wanted.empty:
            return Response(b"", media_type="video/mp4")
        if wanted.broken:
            return StreamingResponse(_broken_stream(), media_type="video/mp4")
        key = (job.prompt, job.size, job.seconds)
        if key not in self._mp4:
            width, height = (int(x) // 4 for x in job.size.split("x"))
            self._mp4[key] = await asyncio.to_thread(
                render_video, job.prompt, width, height, int(job.seconds), 7, 2
            )
        return Response(self._mp4[key], media_type="video/mp4")
