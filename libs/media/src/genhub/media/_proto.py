"""Media references in the public API: ``MediaRef`` into ``genhub.v1.StoredMedia`` (what a
worker records), and fresh time-limited URLs on read (what the gateway hands out).

Migration: results recorded before the media store existed hold ``data:`` URLs (the demo
provider) or the providers' own URLs, and no ``StoredMedia``. They are served as before:
``link_result`` leaves every entry without a stored reference untouched. No task document is
rewritten (docs/media.md, "Existing results").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from genhub.media._ref import MediaRef
from genhub.media._store import MediaStore
from genhub.v1 import task_pb2


def to_stored_media(ref: MediaRef) -> task_pb2.StoredMedia:
    """The API form of a reference (no URL: that is made on every read)."""
    return task_pb2.StoredMedia(
        media_id=ref.media_id,
        key=ref.key,
        size_bytes=ref.size,
        sha256=ref.sha256,
        duration_seconds=ref.duration,
    )


def image_entry(ref: MediaRef) -> task_pb2.GeneratedImage:
    """A result image for a stored file: type and pixel size from the file itself, no URL."""
    return task_pb2.GeneratedImage(
        mime_type=ref.mime, width=ref.width, height=ref.height, media=to_stored_media(ref)
    )


def video_entry(ref: MediaRef) -> task_pb2.GeneratedVideo:
    """A result video for a stored file (duration rounded to whole seconds, as the API has it)."""
    return task_pb2.GeneratedVideo(
        mime_type=ref.mime, duration_seconds=round(ref.duration), media=to_stored_media(ref)
    )


async def link_result(
    result: task_pb2.TaskResult, store: MediaStore, ttl_seconds: float | None = None
) -> None:
    """Fill ``url`` (and ``media.url_expire_time``) of every stored image and video of
    ``result`` with a fresh URL valid for ``ttl_seconds`` (default: the store's). Entries
    without a stored reference (data: URLs, provider URLs) are left as they are."""
    ttl = store.url_ttl_seconds if ttl_seconds is None else ttl_seconds
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    entries: list[task_pb2.GeneratedImage | task_pb2.GeneratedVideo] = list(result.images)
    if result.HasField("video"):
        entries.append(result.video)
    for entry in entries:
        if not entry.HasField("media") or not entry.media.media_id:
            continue
        entry.url = await store.url(entry.media.media_id, ttl)
        entry.media.url_expire_time.FromDatetime(expires)
