"""Streaming downloads of provider result URLs under the egress rules, with a size limit and a
deadline, mapped into the media error tree."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from genhub.egress import (
    EgressPolicy,
    EgressRefused,
    HttpStatusError,
    Resolver,
    guarded_client,
    open_stream,
)
from genhub.media import _errors as errors

CHUNK = 256 * 1024
# base64 is decoded in slices of this many characters (a multiple of 4): 256 KiB of output.
_B64_SLICE = CHUNK // 3 * 4


def redact(url: str) -> str:
    """``url`` without user info, query and fragment (presigned provider URLs carry
    credentials there), for messages and logs; the host keeps its port. data: URLs are
    shortened to their media type."""
    if url.startswith("data:"):
        return url[: url.find(",")] + ",…" if "," in url else "data:…"
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]  # host[:port], without user:password@
        return f"{parts.scheme}://{host}{parts.path}"[:300]
    except ValueError:
        return "(malformed URL)"


class Downloader:
    """Fetches URLs in chunks: http(s) only, egress rules on every hop, at most
    ``max_redirects`` redirects, ``timeout`` seconds for the whole transfer. Close with
    ``aclose``."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None = None,
        *,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_redirects: int = 3,
    ) -> None:
        self._policy = policy
        self._timeout = timeout
        self._max_redirects = max_redirects
        self._client = guarded_client(
            policy, resolver, timeout=httpx.Timeout(min(timeout, 30.0), connect=connect_timeout)
        )

    async def aclose(self) -> None:
        """Close the connection pool (idempotent)."""
        await self._client.aclose()

    async def chunks(self, url: str, max_bytes: int) -> AsyncIterator[bytes]:
        """The body of ``url`` in chunks of up to 256 KiB.

        Raises PermanentMediaError (URL_REFUSED, TOO_LARGE) or RetryableMediaError
        (FETCH_FAILED: an error status, 404 included, a timeout, a connection error).
        """
        shown = redact(url)
        received = 0
        try:
            async with asyncio.timeout(self._timeout):
                async with open_stream(
                    self._client, url, self._policy, max_redirects=self._max_redirects
                ) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise errors.PermanentMediaError(
                            f"{shown} is {declared} bytes; the limit is {max_bytes}",
                            code=errors.TOO_LARGE,
                        )
                    async for chunk in response.aiter_bytes(CHUNK):
                        received += len(chunk)
                        if received > max_bytes:
                            raise errors.PermanentMediaError(
                                f"{shown} is larger than the limit of {max_bytes} bytes",
                                code=errors.TOO_LARGE,
                            )
                        yield chunk
        except EgressRefused as exc:
            raise errors.PermanentMediaError(
                f"{shown} refused: {exc.reason}", code=errors.URL_REFUSED
            ) from None
        except HttpStatusError as exc:
            raise errors.RetryableMediaError(
                f"{shown}: {exc}", code=errors.FETCH_FAILED, retry_after=exc.retry_after
            ) from None
        except TimeoutError:
            raise errors.RetryableMediaError(
                f"{shown}: no complete answer within {self._timeout:g}s after {received} bytes",
                code=errors.FETCH_FAILED,
            ) from None
        except httpx.HTTPError as exc:
            raise errors.RetryableMediaError(
                f"{shown}: {type(exc).__name__}", code=errors.FETCH_FAILED
            ) from None


async def base64_chunks(data: str, max_bytes: int) -> AsyncIterator[bytes]:
    """Decode base64 text (standard alphabet, whitespace-free) slice by slice, so the decoded
    bytes are never all in memory next to the text. Raises PermanentMediaError(TOO_LARGE) over
    ``max_bytes`` and RetryableMediaError(INVALID) for text that is not base64."""
    if len(data) // 4 * 3 > max_bytes + 2:
        raise errors.PermanentMediaError(
            f"base64 payload of about {len(data) // 4 * 3} bytes; the limit is {max_bytes}",
            code=errors.TOO_LARGE,
        )
    for start in range(0, len(data), _B64_SLICE):
        try:
            yield base64.b64decode(data[start : start + _B64_SLICE], validate=True)
        except (binascii.Error, ValueError):
            raise errors.RetryableMediaError(
                "the provider's base64 payload is not valid base64", code=errors.INVALID
            ) from None
        await asyncio.sleep(0)  # let other tasks run between slices of a large payload


def data_url_payload(url: str) -> str:
    """The base64 text of a ``data:<type>;base64,<text>`` URL; RetryableMediaError(INVALID)
    for another form."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise errors.RetryableMediaError("only base64 data: URLs are accepted", code=errors.INVALID)
    return payload
