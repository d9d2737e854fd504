"""HTTP semantics every route shares (RFC 9110), answered before routing: the request target and
header block limits, HTTP versions and methods the server does not implement (505, 501), and HEAD
answered as GET without content. Requests too large for the HTTP parser itself are answered by
``protocol`` in the same error shape."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genhub.gateway.rest.errors import RestError

# RFC 9110 section 9: the methods this API's routes use, plus HEAD and OPTIONS that every
# resource answers. Others (TRACE, CONNECT, extensions) are 501 Not Implemented.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# h11 reads any "HTTP/x.y" request line; only HTTP/1.x is spoken here (HTTP/2 goes to the gRPC
# port, or to a proxy in front).
HTTP_VERSIONS = frozenset({"1.0", "1.1"})


@dataclass(frozen=True)
class HeadLimits:
    """Limits on a request's head.

    ``max_url_bytes`` bounds the request target (path and query; RFC 9110 section 4.1 asks
    servers to take at least 8000 octets): longer is ``414 URI Too Long``. ``max_header_bytes``
    bounds the header block (every ``name: value`` line): larger is ``431 Request Header Fields
    Too Large`` (RFC 6585 section 5).
    """

    max_url_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024

    @property
    def parser_buffer_bytes(self) -> int:
        """What the HTTP/1.1 parser may buffer for an incomplete request head: both limits and
        the request line's method and version. Beyond it the parser stops (``protocol``)."""
        return self.max_url_bytes + self.max_header_bytes + 1024


def url_too_long(length: int, limits: HeadLimits) -> RestError:
    """414 for a request target of ``length`` bytes."""
    return RestError.bad_request(
        "url",
        f"is {length} bytes or more; the limit is {limits.max_url_bytes}",
        f"the request URL is longer than {limits.max_url_bytes} bytes",
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        status=414,
    )


def headers_too_large(length: int, limits: HeadLimits) -> RestError:
    """431 for a header block of ``length`` bytes."""
    return RestError.bad_request(
        "headers",
        f"are {length} bytes or more; the limit is {limits.max_header_bytes}",
        f"the request header block is larger than {limits.max_header_bytes} bytes",
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        status=431,
    )


class EdgeMiddleware:
    """Applies ``HeadLimits``, refuses unknown methods with 501, and strips the content of
    responses to HEAD (their headers stay those of GET, ``Content-Length`` included)."""

    def __init__(self, app: ASGIApp, limits: HeadLimits | None = None) -> None:
        self.app = app
        self.limits = limits or HeadLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._refusal(scope)
        if error is not None:
            await error.response()(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            send = _without_content(send)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> RestError | None:
        query = scope.get("query_string", b"")
        target = len(scope.get("raw_path") or scope["path"].encode()) + (
            len(query) + 1 if query else 0
        )
        if target > self.limits.max_url_bytes:
            return url_too_long(target, self.limits)
        block = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if block > self.limits.max_header_bytes:
            return headers_too_large(block, self.limits)
        if scope.get("http_version", "1.1") not in HTTP_VERSIONS:
            return RestError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"HTTP/{scope['http_version'][:8]} is not supported; use HTTP/1.1",
                status=505,
                headers={"Connection": "close"},
            )
        if scope["method"] not in KNOWN_METHODS:
            return RestError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"method {scope['method'][:20]} is not implemented",
                status=501,
            )
        return None


def _without_content(send: Send) -> Send:
    async def headless(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return headless
