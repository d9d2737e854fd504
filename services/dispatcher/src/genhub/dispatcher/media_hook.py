"""The media hook: a finished run's images and video are moved into the media store before the
result is recorded, so the task keeps references (media id, key, size, sha256, type, pixel
size, duration) and never bytes or a provider URL that expires (docs/media.md, "In the worker").

Which provider URLs may be fetched: the egress rules of ``GENHUB_EGRESS_ALLOW``, plus the host of
the provider's own base URL — the stored configuration's ``api_base`` for this call, and what the
adapter reports through :class:`DeclaresBaseUrls` (its deployment default, e.g. a fake on
loopback). An adapter whose result URLs need its credentials (OpenAI's video content endpoint)
hands the bytes over itself through :class:`StreamsMedia`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from genhub.dispatcher.hooks import Run, WorkerHook
from genhub.egress import Resolver
from genhub.media import (
    MediaError,
    MediaRef,
    MediaSettings,
    MediaStore,
    build_store,
    image_entry,
    video_entry,
)
from genhub.media import _errors as codes
from genhub.providers.sdk import (
    BadOutput,
    Call,
    CallConfig,
    ErrorClass,
    Finished,
    PermanentError,
    Provider,
    ProviderError,
    RetryableError,
)
from genhub.v1 import task_pb2

log = logging.getLogger(__name__)


@runtime_checkable
class DeclaresBaseUrls(Protocol):
    """An adapter that says which base URLs it calls for a configuration (its own default when
    ``config.api_base`` is empty). Result URLs on those hosts may be fetched even when the
    address is local or private: the operator configured them."""

    def base_urls(self, config: CallConfig) -> Sequence[str]:
        """The base URLs (scheme://host[:port]/...) this adapter calls with ``config``."""
        ...


@runtime_checkable
class StreamsMedia(Protocol):
    """An adapter whose result URLs need its credentials: it streams such a file itself."""

    def media_stream(self, call: Call, url: str) -> AsyncIterator[bytes] | None:
        """The file at ``url`` in chunks, or None for a URL anyone may fetch."""
        ...


class StorageUnavailable(RetryableError):
    """The media store failed while keeping the output: retried; not the provider's fault."""

    default_class = ErrorClass.STORAGE_UNAVAILABLE


def provider_error(exc: MediaError) -> ProviderError:
    """The SDK error a media failure stands for, so the handler's retry policy applies:
    a file that is not what it claims, cut short or not (yet) there (HTML, truncated, 404) is
    ``BadOutput`` (retryable); an object-store failure ``StorageUnavailable`` (retryable); a
    refused URL or an oversized file a permanent ``BAD_OUTPUT`` failure."""
    message = f"storing the provider's output failed: {exc.message}"
    if exc.code == codes.STORE_UNAVAILABLE:
        return StorageUnavailable(message, code=exc.code, retry_after=exc.retry_after)
    if exc.retryable:
        return BadOutput(message, code=exc.code, retry_after=exc.retry_after)
    return PermanentError(message, code=exc.code, error_class=ErrorClass.BAD_OUTPUT)


class MediaHook(WorkerHook):
    """``on_output``: stores every image (URL, data: URL or base64) and the video of a finished
    run under ``owner=task_id`` and answers the result with stored references instead.

    Stores are made per set of extra allowed hosts (the provider's base URLs; a handful per
    worker) and share the settings; close them with ``aclose``.
    """

    def __init__(
        self, settings: MediaSettings, provider: Provider, resolver: Resolver | None = None
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._resolver = resolver
        self._stores: dict[frozenset[str], MediaStore] = {}

    async def aclose(self) -> None:
        """Close every store's connections (idempotent)."""
        stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            await store.aclose()

    def _base_urls(self, config: CallConfig) -> frozenset[str]:
        urls = [config.api_base] if config.api_base else []
        if isinstance(self._provider, DeclaresBaseUrls):
            urls.extend(self._provider.base_urls(config))
        return frozenset(u for u in urls if urlsplit(u).hostname)

    def store_for(self, config: CallConfig) -> MediaStore:
        """The store whose downloads may also reach the provider's own base URLs."""
        bases = self._base_urls(config)
        store = self._stores.get(bases)
        if store is None:
            policy = self._settings.egress_policy()
            for base in sorted(bases):
                policy = policy.allowing(base)
            store = build_store(self._settings, self._resolver, policy=policy)
            self._stores[bases] = store
        return store

    async def on_output(self, run: Run, finished: Finished) -> Finished:
        """The output with every file stored; raises BadOutput, StorageUnavailable or a
        permanent error (see ``provider_error``); files stored before a failure are deleted."""
        kind = run.task.WhichOneof("spec")
        if kind not in ("image", "video"):
            return finished
        store = self.store_for(run.call.config)
        result = task_pb2.TaskResult()
        result.CopyFrom(finished.result)
        if kind == "image":
            images = finished.result.images
            refs = await self._put_all(
                store, run, [_File("image", i.url, i.b64_data) for i in images]
            )
            del result.images[:]
            result.images.extend(image_entry(ref) for ref in refs)
        else:
            (ref,) = await self._put_all(store, run, [_File("video", finished.result.video.url)])
            provider_seconds = finished.result.video.duration_seconds
            result.video.CopyFrom(video_entry(ref))
            if not ref.duration and provider_seconds:
                result.video.duration_seconds = provider_seconds  # the file has no duration
        return Finished(result, finished.usage)

    async def _put_all(self, store: MediaStore, run: Run, files: list[_File]) -> list[MediaRef]:
        # Concurrently: each file spools to its own temporary file, so memory stays bounded.
        outcomes = await asyncio.gather(
            *(self._put(store, run, file) for file in files), return_exceptions=True
        )
        refs = [o for o in outcomes if isinstance(o, MediaRef)]
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if not failures:
            return refs
        # An attempt that fails leaves nothing behind: the retry stores its own files.
        for ref in refs:
            try:
                await store.delete(ref.media_id)
            except MediaError as exc:
                log.warning("stored file of a failed attempt not deleted: %s", exc.message)
        first = failures[0]
        if isinstance(first, MediaError):
            raise provider_error(first) from first
        raise first

    async def _put(self, store: MediaStore, run: Run, file: _File) -> MediaRef:
        owner = run.task.task_id
        if file.b64:  # base64 wins over a URL: nothing to download
            return await store.put_base64(file.b64, owner=owner, kind=file.kind)
        stream = None
        if isinstance(self._provider, StreamsMedia):
            stream = self._provider.media_stream(run.call, file.url)
        if stream is not None:
            return await store.put(stream, owner=owner, kind=file.kind)
        return await store.put_url(file.url, owner=owner, kind=file.kind)


@dataclass(frozen=True)
class _File:
    """One output file: a URL (http(s) or data:) or base64 bytes (check_output saw one)."""

    kind: Literal["image", "video"]
    url: str
    b64: str = ""
