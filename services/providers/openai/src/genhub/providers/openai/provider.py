"""The OpenAI adapter, and the same adapter serving any OpenAI-compatible API.

Routing is by the task's kind (the dispatcher has already picked ``generate`` or
``submit``/``poll`` from the model's catalogue entry): image tasks go to images/generations,
text tasks to chat/completions, video tasks (``long_running`` models) to the videos API.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import openai

from genhub.providers.openai import chat, images, videos
from genhub.providers.openai.clients import ClientPool, endpoint
from genhub.providers.openai.config import OpenAISettings
from genhub.providers.openai.errors import translated
from genhub.providers.sdk import (
    BadOutput,
    Call,
    Finished,
    InvalidParameter,
    Pending,
    Submitted,
)
from genhub.v1 import provider_pb2

log = logging.getLogger(__name__)


class OpenAIProvider:
    """Implements :class:`genhub.providers.sdk.Provider` through ``openai.AsyncOpenAI``.

    Args:
        settings: Deployment defaults (timeouts, pooling; key and base URL for ``openai``).
        name: The provider name tasks and queues use.
        display_name: Name for people.
        models: The catalogue this adapter declares.
        compatible: Serve an OpenAI-compatible service: credentials and base URL come only from
            the stored (or per-request) configuration, never from ``OPENAI_*`` variables, and
            chat sends ``max_tokens`` rather than ``max_completion_tokens``.
    """

    def __init__(
        self,
        settings: OpenAISettings,
        *,
        name: str = "openai",
        display_name: str = "OpenAI",
        models: Sequence[provider_pb2.Model] = (),
        compatible: bool = False,
    ) -> None:
        self.name = name
        self.display_name = display_name
        self._settings = settings
        self._models = list(models)
        self._compatible = compatible
        self._clients = ClientPool(settings)

    def catalogue(self) -> Sequence[provider_pb2.Model]:
        """The declared models (operators add more through the catalogue API)."""
        return self._models

    @contextlib.asynccontextmanager
    async def _client(self, call: Call) -> AsyncIterator[openai.AsyncOpenAI]:
        target = endpoint(
            self.name, call.config, self._settings, use_environment=not self._compatible
        )
        shared = call.config.source != "request"
        async with self._clients.client(target, shared=shared) as client:
            with translated(self.name, secret=target.api_key):
                yield client

    async def generate(self, call: Call) -> Finished:
        """Run an image or text task in one call."""
        kind = call.task.WhichOneof("spec")
        async with self._client(call) as client:
            if kind == "image":
                return await images.generate(client, call)
            if kind == "text":
                name = "max_tokens" if self._compatible else "max_completion_tokens"
                return await chat.complete(client, call, max_tokens_name=name)
        raise InvalidParameter(
            f"{self.name}: {call.task.model} is a {kind} model and runs as a job",
            code="NOT_A_ONE_CALL_MODEL",
        )

    def _video(self, call: Call) -> None:
        if call.task.WhichOneof("spec") != "video":
            raise InvalidParameter(
                f"{self.name}: {call.task.model} is marked long-running but is not a video model",
                code="NOT_A_VIDEO_MODEL",
            )

    async def submit(self, call: Call) -> Submitted:
        """Create a Sora job."""
        self._video(call)
        async with self._client(call) as client:
            return await videos.submit(client, call, self._settings.video_poll_seconds)

    async def poll(self, call: Call, job_id: str) -> Finished | Pending:
        """Check a Sora job."""
        self._video(call)
        async with self._client(call) as client:
            return await videos.poll(client, call, job_id, self._settings.video_poll_seconds)

    def media_stream(self, call: Call, url: str) -> AsyncIterator[bytes] | None:
        """The bytes of a Sora job's content URL, read with the call's key (the endpoint
        answers 401 without it; ``GET /videos/{id}/content``); None for any other URL, which
        the media store fetches itself without credentials
        (``genhub.dispatcher.media_hook.StreamsMedia``)."""
        if "/videos/" not in url or not url.endswith("/content"):
            return None
        return self._video_content(call, url)

    async def _video_content(self, call: Call, url: str) -> AsyncIterator[bytes]:
        async with self._client(call) as client:
            job_id = videos.content_job_id(client, url)
            if job_id is None:  # not this endpoint's: never send the key elsewhere
                raise BadOutput(
                    f"{self.name}: the video URL is not on this provider's API base",
                    code="FOREIGN_CONTENT_URL",
                )
            async for chunk in videos.download(client, job_id):
                yield chunk

    async def cancel(self, call: Call, job_id: str) -> None:
        """Delete a Sora job, so a cancelled task stops costing."""
        async with self._client(call) as client:
            await videos.cancel(client, job_id)
        log.info("provider job deleted", extra={"provider": self.name, "job_id": job_id})

    async def aclose(self) -> None:
        """Close every pooled client."""
        await self._clients.aclose()
