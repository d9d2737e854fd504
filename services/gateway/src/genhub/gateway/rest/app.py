"""The REST application: fixed pages (OpenAPI document, API docs) and, for every other path,
the transcoding dispatcher; every answer, errors included, in grpc-gateway's shape."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from genhub.gateway.rest import docs, probes
from genhub.gateway.rest.bindings import Binding, load_bindings
from genhub.gateway.rest.errors import RestError
from genhub.gateway.rest.exchange import OVERHEAD_HEADER, ExchangeMiddleware
from genhub.gateway.rest.openapi import build_document
from genhub.gateway.rest.routes import Dispatcher, Limits

log = logging.getLogger(__name__)

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
# The gRPC code an HTTP error that never reached the dispatcher stands for.
_CODE_FOR_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODE_FOR_HTTP.get(exc.status_code, grpc.StatusCode.UNKNOWN)
    error = RestError(code, exc.detail, status=exc.status_code, headers=exc.headers)
    return error.response()


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled REST error", exc_info=exc)
    return RestError(grpc.StatusCode.INTERNAL, "internal error; see server logs").response()


def create_app(
    channel: grpc.aio.Channel,
    *,
    limits: Limits | None = None,
    cors_origins: Sequence[str] = (),
    docs_enabled: bool = True,
    bindings: Sequence[Binding] | None = None,
    stopping: asyncio.Event | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The ASGI app proxying REST to the gRPC server behind ``channel``.

    ``cors_origins`` empty means no CORS headers (browsers then refuse cross-origin calls);
    ``["*"]`` allows any origin. Setting ``stopping`` ends open streams (server shutdown).
    ``extra_routes`` are plain HTTP routes outside the protos (the media route).
    """
    bindings = list(bindings if bindings is not None else load_bindings())
    dispatcher = Dispatcher(channel, bindings, limits or Limits(), stopping or asyncio.Event())
    routes: list[BaseRoute] = [*probes.routes(channel), *extra_routes]
    if docs_enabled:
        document = json.dumps(build_document(bindings), ensure_ascii=False).encode()

        async def openapi(request: Request) -> Response:
            return Response(document, media_type="application/json")

        routes += [
            Route(OPENAPI_PATH, openapi, methods=["GET"]),
            Route(DOCS_PATH, docs.page, methods=["GET"]),
            Mount(docs.ASSETS_PATH, app=docs.assets()),
        ]
    middleware = [Middleware(ExchangeMiddleware)]
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=sorted({b.http_method for b in bindings} | {"GET"}),
                allow_headers=["*"],
                expose_headers=EXPOSED_HEADERS,
                max_age=600,
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    # Every path that is not a fixed page goes to the dispatcher, which answers 404 and 405
    # from the HTTP bindings itself.
    app.router.default = dispatcher
    return app
