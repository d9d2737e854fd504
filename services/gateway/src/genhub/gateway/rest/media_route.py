"""``GET /api/v1/media/{media_id}``: files of the media store (a local folder, or S3 when URL keys
are configured), streamed by the gateway behind an HMAC-signed expiry (``expires`` +
``signature`` query parameters, see ``genhub.media.UrlSigner``). An S3 store without URL keys
hands out presigned GETs instead and never comes here. Errors in GenHub's JSON shape: 403 for a
missing, wrong or expired signature, 404 for an unknown or deleted file, 503 when the store
cannot be read."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
from google.rpc import error_details_pb2
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from genhub.gateway.rest.errors import RestError
from genhub.media import MEDIA_PATH, MediaError, MediaStore, SignatureInvalid, UrlSigner, mime_of

ROUTE_PATH = MEDIA_PATH + "{media_id}"


def _error(code: grpc.StatusCode, message: str, reason: str) -> Response:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="genhub")
    return RestError(code, message, details=[info]).response()


async def _chained(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def media_route(store: MediaStore, signer: UrlSigner) -> Route:
    """The Starlette route serving ``store``'s files to holders of a URL ``signer`` made."""

    async def serve(request: Request) -> Response:
        media_id = str(request.path_params["media_id"])
        try:
            mime = mime_of(media_id)
        except ValueError:
            return _error(grpc.StatusCode.NOT_FOUND, "no such media file", "MEDIA_NOT_FOUND")
        query = request.query_params
        try:
            signer.verify(media_id, query.get("expires", ""), query.get("signature", ""))
        except SignatureInvalid as exc:
            return _error(grpc.StatusCode.PERMISSION_DENIED, exc.reason, "MEDIA_URL_INVALID")
        chunks = store.open(media_id)
        # Read the first chunk before answering, so a missing file is a 404, not a broken 200.
        try:
            first = await anext(chunks, b"")
        except MediaError as exc:
            if exc.retryable:
                return _error(grpc.StatusCode.UNAVAILABLE, exc.message, exc.code)
            return _error(grpc.StatusCode.NOT_FOUND, "no such media file", exc.code)
        remaining = max(0, int(query["expires"]) - int(time.time()))
        return StreamingResponse(
            _chained(first, chunks),
            media_type=mime,
            headers={
                # Cacheable by the browser only, and never beyond the URL's own expiry.
                "Cache-Control": f"private, max-age={remaining}",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return Route(ROUTE_PATH, serve, methods=["GET"])
