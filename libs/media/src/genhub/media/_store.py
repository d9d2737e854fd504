"""The media store: one small interface over both backends.

``put*`` streams a file to a temporary file on disk (hashing and counting on the way, never
holding it in memory), checks what it really is, and only then uploads it, in bounded parts; so
an object in the store is always a complete, checked file, and a 1 GB video costs a few MB of
memory. Reads hand out time-limited URLs; the bytes never pass through a task document.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from genhub.media import _errors as errors
from genhub.media._backend import Backend, StoredObject
from genhub.media._download import Downloader, base64_chunks, data_url_payload
from genhub.media._inspect import Kind, inspect_file
from genhub.media._ref import MediaRef, key_for, new_media_id, parse_media_id


class MediaStore:
    """Stores and serves generated files.

    ``backend``: where bytes live; ``downloader``: fetches provider URLs (None: ``put_url``
    accepts data: URLs only); ``prefix``: key prefix in the bucket or folder; limits in bytes
    per kind; ``url_ttl_seconds``: default lifetime of the URLs ``url`` hands out.
    """

    def __init__(
        self,
        backend: Backend,
        downloader: Downloader | None = None,
        *,
        prefix: str = "media/",
        max_image_bytes: int = 50 * 1024 * 1024,
        max_video_bytes: int = 1024 * 1024 * 1024,
        url_ttl_seconds: float = 3600.0,
        spool_dir: Path | None = None,
    ) -> None:
        self._backend = backend
        self._downloader = downloader
        self._prefix = prefix
        self._limits: dict[Kind | None, int] = {
            "image": max_image_bytes,
            "video": max_video_bytes,
            None: max(max_image_bytes, max_video_bytes),
        }
        self.url_ttl_seconds = url_ttl_seconds
        self._spool_dir = spool_dir

    async def aclose(self) -> None:
        """Release the downloader's connections (idempotent)."""
        if self._downloader is not None:
            await self._downloader.aclose()

    # ------------------------------------------------------------------ writing ----

    async def put(
        self, chunks: AsyncIterable[bytes], *, owner: str, kind: Kind | None = None
    ) -> MediaRef:
        """Store the bytes of ``chunks`` as a file of ``owner`` (a task id).

        ``kind`` is what the task asked for; a file of another kind is refused. Raises
        RetryableMediaError (INVALID: not an image/video, truncated; STORE_UNAVAILABLE) or
        PermanentMediaError (TOO_LARGE); errors of ``chunks`` itself pass through.
        """
        limit = self._limits[kind]
        with tempfile.TemporaryDirectory(prefix="genhub-media-", dir=self._spool_dir) as tmp:
            path = Path(tmp) / "file"
            digest = hashlib.sha256()
            size = 0
            with path.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise errors.PermanentMediaError(
                            f"the file is larger than the limit of {limit} bytes",
                            code=errors.TOO_LARGE,
                        )
                    digest.update(chunk)
                    out.write(chunk)
            info = await asyncio.to_thread(inspect_file, path, kind)
            media_id = new_media_id(owner, info.ext)
            key = key_for(media_id, self._prefix)
            await self._backend.put_file(key, path, info.mime)
        return MediaRef(
            media_id=media_id,
            key=key,
            size=size,
            sha256=digest.hexdigest(),
            mime=info.mime,
            width=info.width,
            height=info.height,
            duration=info.duration,
        )

    async def put_url(self, url: str, *, owner: str, kind: Kind | None = None) -> MediaRef:
        """Store the file at ``url``: a provider's http(s) URL (fetched under the egress rules)
        or a base64 ``data:`` URL. Errors as for ``put``, plus the downloader's
        (URL_REFUSED, FETCH_FAILED)."""
        limit = self._limits[kind]
        if url.startswith("data:"):
            return await self.put(
                base64_chunks(data_url_payload(url), limit), owner=owner, kind=kind
            )
        if self._downloader is None:
            raise errors.PermanentMediaError(
                "this media store has no downloader", code=errors.URL_REFUSED
            )
        return await self.put(self._downloader.chunks(url, limit), owner=owner, kind=kind)

    async def put_base64(self, data: str, *, owner: str, kind: Kind | None = None) -> MediaRef:
        """Store a base64 payload (e.g. OpenAI's ``b64_json``), decoded slice by slice."""
        return await self.put(base64_chunks(data, self._limits[kind]), owner=owner, kind=kind)

    # ------------------------------------------------------------------ reading ----

    def key(self, media_id: str) -> str:
        """The object key of ``media_id``; PermanentMediaError(NOT_FOUND) for a malformed id."""
        try:
            return key_for(media_id, self._prefix)
        except ValueError:
            raise errors.PermanentMediaError(
                f"{media_id[:100]!r} is not a media id", code=errors.NOT_FOUND
            ) from None

    def open(self, media_id: str) -> AsyncIterator[bytes]:
        """The file's bytes in chunks; PermanentMediaError(NOT_FOUND) when it does not exist."""
        return self._backend.read(self.key(media_id))

    async def url(self, media_id: str, ttl_seconds: float | None = None) -> str:
        """A URL serving the file for ``ttl_seconds`` (default ``url_ttl_seconds``): a presigned
        S3 GET, or the gateway's signed ``/api/v1/media/{media_id}``."""
        ttl = self.url_ttl_seconds if ttl_seconds is None else ttl_seconds
        return await self._backend.url(self.key(media_id), media_id, ttl)

    # --------------------------------------------------------------- removing ----

    async def delete(self, media_id: str) -> None:
        """Delete one file (no error when it is already gone)."""
        await self._backend.delete(self.key(media_id))

    async def delete_owner(self, owner: str) -> int:
        """Delete every file of ``owner`` (a deleted task); returns how many were deleted."""
        parse_media_id(f"{owner}_{'0' * 16}.png")  # ValueError for an owner that is no id part
        count = 0
        async for obj in self._backend.list(f"{self._prefix}{owner}/"):
            await self._backend.delete(obj.key)
            count += 1
        return count

    def list(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        """Every stored object under this store's prefix (plus ``prefix``), for sweeps."""
        return self._backend.list(self._prefix + prefix)

    async def delete_key(self, key: str) -> None:
        """Delete an object by key (sweeps; no error when it is already gone)."""
        await self._backend.delete(key)

    def owner_of_key(self, key: str) -> str | None:
        """The owner folder of a key this store wrote, or None for a foreign key."""
        if not key.startswith(self._prefix):
            return None
        owner, sep, _ = key[len(self._prefix) :].partition("/")
        return owner if sep and owner else None
