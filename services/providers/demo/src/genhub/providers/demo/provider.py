"""The demo provider: local, offline and deterministic images, videos and text."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import time
from collections.abc import Iterator, Sequence

from genhub.providers.demo import directives
from genhub.providers.demo.config import DemoSettings
from genhub.providers.demo.render import render_png, render_video
from genhub.providers.sdk import (
    Call,
    Finished,
    Pending,
    PermanentError,
    RetryableError,
    Submitted,
    load_catalogue,
)
from genhub.v1 import provider_pb2, task_pb2

_VIDEO_SIZES = {
    ("240p", "16:9"): (426, 240),
    ("240p", "9:16"): (240, 426),
    ("240p", "1:1"): (240, 240),
    ("480p", "16:9"): (854, 480),
    ("480p", "9:16"): (480, 854),
    ("480p", "1:1"): (480, 480),
}


def _seed(task: task_pb2.Task, explicit: int | None) -> int:
    if explicit is not None:
        return explicit
    return int.from_bytes(hashlib.sha256(task.task_id.encode()).digest()[:4], "big")


class DemoProvider:
    """Implements :class:`genhub.providers.sdk.Provider` without any network."""

    name = "demo"
    display_name = "Demo (local, offline)"

    def __init__(self, settings: DemoSettings) -> None:
        self._settings = settings
        self._models = load_catalogue("genhub.providers.demo")
        self._log_fd: int | None = None

    @contextlib.contextmanager
    def _recorded(self, call: Call, operation: str) -> Iterator[None]:
        """Append a start line, and an end line when the call returns or fails, to the call log
        (one ``O_APPEND`` write each: whole lines, whatever other processes append)."""
        if not self._settings.call_log:
            yield
            return
        if self._log_fd is None:
            self._log_fd = os.open(
                self._settings.call_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
            )
        fields = f"{operation}\t{call.task.task_id}\t{call.attempt}\t{os.getpid()}"
        os.write(self._log_fd, f"start\t{fields}\t{time.time():.6f}\n".encode())
        try:
            yield
        finally:
            os.write(self._log_fd, f"end\t{fields}\t{time.time():.6f}\n".encode())

    def catalogue(self) -> Sequence[provider_pb2.Model]:
        """The demo models."""
        return self._models

    async def _behave(self, call: Call, prompt: str) -> directives.Directives:
        wanted = directives.parse(prompt)
        delay = (self._settings.latency_ms + wanted.sleep_ms) / 1000
        if delay:
            await asyncio.sleep(delay)  # stands in for the provider's own latency
        if wanted.permanent_failure:
            raise PermanentError("demo: permanent failure requested", code="DEMO_PERMANENT")
        if call.attempt <= wanted.retryable_failures:
            raise RetryableError(
                f"demo: failure {call.attempt} of {wanted.retryable_failures} requested",
                code="DEMO_RETRYABLE",
            )
        if self._settings.failure_rate:
            digest = hashlib.sha256(f"{call.task.task_id}:{call.attempt}".encode()).digest()
            if int.from_bytes(digest[:4], "big") / 2**32 < self._settings.failure_rate:
                raise RetryableError("demo: random failure", code="DEMO_RANDOM_FAILURE")
        return wanted

    async def generate(self, call: Call) -> Finished:
        """Render images or answer text."""
        task = call.task
        with self._recorded(call, "generate"):
            if task.HasField("image"):
                return await self._image(call)
            if task.HasField("text"):
                return await self._text(call)
        raise PermanentError(f"demo: {task.model} does not run in one call", code="DEMO_BAD_MODEL")

    async def _image(self, call: Call) -> Finished:
        spec = call.task.image
        wanted = await self._behave(call, spec.prompt)
        if wanted.empty:
            return Finished(task_pb2.TaskResult(), task_pb2.Usage())
        width, height = (int(x) for x in (spec.size or "1024x1024").split("x"))
        seed = _seed(call.task, spec.seed if spec.HasField("seed") else None)
        result = task_pb2.TaskResult(provider_request_id=f"demo-{call.task.task_id}-{call.attempt}")
        for i in range(spec.n or 1):
            png = await asyncio.to_thread(render_png, spec.prompt, width, height, seed + i)
            encoded = base64.b64encode(png).decode()
            image = result.images.add(mime_type="image/png", width=width, height=height)
            if spec.response_format == task_pb2.IMAGE_RESPONSE_FORMAT_B64_JSON:
                image.b64_data = encoded
            else:
                image.url = f"data:image/png;base64,{encoded}"
        return Finished(result, task_pb2.Usage(images=len(result.images)))

    async def _text(self, call: Call) -> Finished:
        spec = call.task.text
        prompt = spec.prompt or "\n".join(m.content for m in spec.messages)
        wanted = await self._behave(call, prompt)
        if wanted.empty:
            return Finished(task_pb2.TaskResult(), task_pb2.Usage())
        words = f"Demo answer to: {prompt}".split()
        finish = "stop"
        if spec.max_tokens and len(words) > spec.max_tokens:
            words, finish = words[: spec.max_tokens], "length"
        prompt_tokens = len(prompt.split())
        return Finished(
            task_pb2.TaskResult(
                text=" ".join(words),
                finish_reason=finish,
                provider_request_id=f"demo-{call.task.task_id}-{call.attempt}",
            ),
            task_pb2.Usage(
                input_tokens=prompt_tokens,
                output_tokens=len(words),
                total_tokens=prompt_tokens + len(words),
            ),
        )

    async def submit(self, call: Call) -> Submitted:
        """Start a video job; the job id records when it was submitted."""
        with self._recorded(call, "submit"):
            await self._behave(call, call.task.video.prompt)
        job_id = f"demo-{call.task.task_id}-{time.time_ns() // 1_000_000}"
        return Submitted(job_id, poll_after=self._settings.video_render_seconds)

    async def poll(self, call: Call, job_id: str) -> Finished | Pending:
        """Finished once the job's render time has passed since it was submitted."""
        try:
            submitted_ms = int(job_id.rsplit("-", 1)[1])
        except (IndexError, ValueError) as exc:
            raise PermanentError(f"demo: unknown job {job_id!r}", code="DEMO_UNKNOWN_JOB") from exc
        remaining = submitted_ms / 1000 + self._settings.video_render_seconds - time.time()
        if remaining > 0:
            return Pending(poll_after=remaining)
        spec = call.task.video
        if directives.parse(spec.prompt).empty:
            return Finished(task_pb2.TaskResult(), task_pb2.Usage())
        width, height = _VIDEO_SIZES[(spec.resolution or "240p", spec.aspect_ratio or "16:9")]
        seconds = spec.duration_seconds or 2
        seed = _seed(call.task, spec.seed if spec.HasField("seed") else None)
        mp4 = await asyncio.to_thread(render_video, spec.prompt, width, height, seconds, seed)
        return Finished(
            task_pb2.TaskResult(
                video=task_pb2.GeneratedVideo(
                    url="data:video/mp4;base64," + base64.b64encode(mp4).decode(),
                    mime_type="video/mp4",
                    duration_seconds=seconds,
                ),
                provider_request_id=job_id,
            ),
            task_pb2.Usage(video_seconds=seconds),
        )

    async def cancel(self, call: Call, job_id: str) -> None:
        """Nothing to cancel: demo jobs hold no resources."""

    async def aclose(self) -> None:
        """Close the call log, if one is kept."""
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
