"""The REST application: fixed pages (OpenAPI document, API docs) and, for every other path,
the transcoding dispatcher; every answer, errors included, in grpc-gateway's shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from genhub.common.errors import FieldViolation
from genhub.gateway.rest import docs, probes
from genhub.gateway.rest.bindings import Binding, load_bindings
from genhub.gateway.rest.edge import EdgeMiddleware, HeadLimits
from genhub.gateway.rest.errors import RestError
from genhub.gateway.rest.exchange import OVERHEAD_HEADER, ExchangeMiddleware
from genhub.gateway.rest.openapi import build_document
from genhub.gateway.rest.routes import Dispatcher, Limits, allow_header
from genhub.gateway.rest.streaming import NDJSON

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
# Response headers a browser script may read on a cross-origin response.
EXPOSED_HEADERS = [
    "X-Request-Id",
    OVERHEAD_HEADER,
    "Server-Timing",
    "Location",
    "Link",
    "Retry-After",
]
# What Starlette's CORS middleware calls each part of a refused preflight.
_PREFLIGHT_HEADERS = {
    "origin": "Origin",
    "method": "Access-Control-Request-Method",
    "headers": "Access-Control-Request-Headers",
    "private-network": "Access-Control-Request-Private-Network",
}
# The gRPC code an HTTP error that never reached the dispatcher stands for.
_CODE_FOR_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    416: grpc.StatusCode.OUT_OF_RANGE,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODE_FOR_HTTP.get(exc.status_code, grpc.StatusCode.UNKNOWN)
    error = RestError(code, exc.detail, status=exc.status_code, headers=exc.headers)
    return error.response()


class _CORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in GenHub's error shape (Starlette
    answers ``400 text/plain``)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """The answer to a preflight request."""
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # Starlette's text is "Disallowed CORS origin, method, headers, private-network".
        refused = bytes(response.body).decode("utf-8", "replace").removeprefix("Disallowed CORS ")
        violations = [
            FieldViolation(_PREFLIGHT_HEADERS.get(part, part), "is not allowed by the CORS policy")
            for part in refused.split(", ")
        ]
        headers = {k: v for k, v in response.headers.items() if k.startswith("access-control-")}
        return RestError.invalid(violations, status=response.status_code).response(headers)


def _fixed(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """A GET page that also answers OPTIONS with ``Allow``."""

    async def page(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow_header({"GET"})})
        return await endpoint(request)

    return page


def create_app(
    channel: grpc.aio.Channel,
    *,
    limits: Limits | None = None,
    cors_origins: Sequence[str] = (),
    docs_enabled: bool = True,
    bindings: Sequence[Binding] | None = None,
    stopping: asyncio.Event | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    head_limits: HeadLimits | None = None,
) -> Starlette:
    """The ASGI app proxying REST to the gRPC server behind ``channel``.

    ``cors_origins`` empty means no CORS headers (browsers then refuse cross-origin calls);
    ``["*"]`` allows any origin. Setting ``stopping`` ends open streams (server shutdown).
    ``extra_routes`` are plain HTTP routes outside the protos (the media route).
    ``head_limits`` bounds the URL and header block (the server's parser must buffer as much:
    ``protocol.protocol_for``).
    """
    bindings = list(bindings if bindings is not None else load_bindings())
    dispatcher = Dispatcher(channel, bindings, limits or Limits(), stopping or asyncio.Event())
    routes: list[BaseRoute] = [*probes.routes(channel), *extra_routes]
    if docs_enabled:
        document = json.dumps(build_document(bindings), ensure_ascii=False).encode()

        async def openapi(request: Request) -> Response:
            return Response(document, media_type="application/json")

        routes += [
            Route(OPENAPI_PATH, _fixed(openapi), methods=["GET", "OPTIONS"]),
            Route(DOCS_PATH, _fixed(docs.page), methods=["GET", "OPTIONS"]),
            Mount(docs.ASSETS_PATH, app=docs.assets()),
        ]
    # Outermost first: the request id and timing wrap everything, CORS headers reach the
    # edge's refusals, and the edge's limits apply before any routing. JSON answers over 1 KiB
    # are gzipped for clients that accept it (a page of 20 tasks: ~32 KB -> ~6 KB); streams
    # are not, so every watch event leaves at once.
    middleware = [
        Middleware(ExchangeMiddleware),
        Middleware(
            GZipMiddleware,
            minimum_size=1024,
            compresslevel=6,
            exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, NDJSON),
        ),
    ]
    if cors_origins:
        middleware.append(
            Middleware(
                _CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=sorted({b.http_method for b in bindings} | {"GET"}),
                allow_headers=["*"],
                expose_headers=EXPOSED_HEADERS,
                max_age=600,
            )
        )
    middleware.append(Middleware(EdgeMiddleware, limits=head_limits or HeadLimits()))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
    )
    # Every path that is not a fixed page goes to the dispatcher, which answers 404 and 405
    # from the HTTP bindings itself.
    app.router.default = dispatcher
    return app
