"""Where the bytes live: an S3-compatible bucket or a local folder, both through ``obstore``
(S3 signing, multipart uploads and presigning come from the library, never from us)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import obstore
import obstore.exceptions
from obstore.store import LocalStore, S3Store

from genhub.media import _errors as errors
from genhub.media._signing import UrlSigner

# Multipart part size (S3's minimum is 5 MiB) and parts in flight: bounds the upload's memory
# to about their product, whatever the file size.
PART_SIZE = 5 * 1024 * 1024
PARTS_IN_FLIGHT = 1
READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class StoredObject:
    """One object as listed: its key, size in bytes and last-modified time (UTC)."""

    key: str
    size: int
    last_modified: datetime


class Backend(Protocol):
    """The object-store seam the media store is built on."""

    async def put_file(self, key: str, path: Path, mime: str) -> None:
        """Upload a local file to ``key`` (atomically: readers see all of it or nothing)."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; PermanentMediaError(NOT_FOUND) when it is missing."""
        ...

    async def url(self, key: str, media_id: str, ttl_seconds: float) -> str:
        """A URL that serves the object without credentials until ``ttl_seconds`` from now."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""
        ...

    def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Every object whose key starts with ``prefix``."""
        ...


def _unavailable(exc: Exception, what: str) -> errors.MediaError:
    if isinstance(exc, FileNotFoundError | obstore.exceptions.NotFoundError):
        return errors.PermanentMediaError(f"{what}: no such object", code=errors.NOT_FOUND)
    # The library's message names the store and path, never the credentials.
    return errors.RetryableMediaError(
        f"{what}: object store error ({type(exc).__name__})", code=errors.STORE_UNAVAILABLE
    )


class ObstoreBackend:
    """A ``Backend`` over an obstore ``S3Store`` or ``LocalStore``. With a ``signer`` (required
    for a folder) URLs are the gateway's signed media route; an S3 store without one hands out
    presigned GETs of the bucket itself."""

    def __init__(self, store: S3Store | LocalStore, signer: UrlSigner | None = None) -> None:
        if isinstance(store, LocalStore) and signer is None:
            raise ValueError("a local media store needs a URL signer (GENHUB_MEDIA_URL_KEYS)")
        self._store = store
        self._signer = signer
        self._local = isinstance(store, LocalStore)

    async def put_file(self, key: str, path: Path, mime: str) -> None:
        """Upload ``path`` in ``PART_SIZE`` parts, ``PARTS_IN_FLIGHT`` at a time."""
        try:
            await obstore.put_async(
                self._store,
                key,
                path,
                # LocalStore keeps no attributes; the key's extension gives the type there.
                attributes=None if self._local else {"Content-Type": mime},
                chunk_size=PART_SIZE,
                max_concurrency=PARTS_IN_FLIGHT,
            )
        except Exception as exc:  # obstore raises builtins and its own tree alike
            raise _unavailable(exc, f"storing {key}") from exc

    async def read(self, key: str) -> AsyncIterator[bytes]:
        """Stream ``key`` in chunks of at least ``READ_CHUNK`` bytes."""
        try:
            result = await obstore.get_async(self._store, key)
            async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                yield bytes(chunk)
        except Exception as exc:
            raise _unavailable(exc, f"reading {key}") from exc

    async def url(self, key: str, media_id: str, ttl_seconds: float) -> str:
        """A gateway URL with an HMAC-signed expiry, or (S3 without a signer) a presigned GET."""
        if self._signer is not None:
            return self._signer.sign(media_id, ttl_seconds)
        try:
            assert isinstance(self._store, S3Store)
            return await obstore.sign_async(self._store, "GET", key, timedelta(seconds=ttl_seconds))
        except Exception as exc:
            raise _unavailable(exc, f"signing {key}") from exc

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing object is not an error."""
        try:
            await obstore.delete_async(self._store, key)
        except (FileNotFoundError, obstore.exceptions.NotFoundError):
            return
        except Exception as exc:
            raise _unavailable(exc, f"deleting {key}") from exc

    async def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        """List in pages of 500 keys."""
        try:
            async for batch in obstore.list(self._store, prefix or None, chunk_size=500):
                for meta in batch:
                    yield StoredObject(meta["path"], int(meta["size"]), meta["last_modified"])
        except FileNotFoundError:
            return  # a local folder that was never written to
        except Exception as exc:
            raise _unavailable(exc, f"listing {prefix or '/'}") from exc
