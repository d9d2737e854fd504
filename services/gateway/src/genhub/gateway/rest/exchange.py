"""Per-request bookkeeping shared by the middleware and the handlers: the request id, how
much of the request's time went to the gRPC call (the rest is the REST layer's overhead), and
the ``http_server_*`` metrics (genhub.common.metrics)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from prometheus_client import Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genhub.common import logging as glog
from genhub.common.ids import new_token
from genhub.common.metrics import HTTP_SERVER_REQUEST_SECONDS, HTTP_SERVER_REQUESTS
from genhub.gateway.rest.errors import RestError
from genhub.gateway.rest.headers import REQUEST_ID_HEADER, usable_request_id

log = logging.getLogger(__name__)

SCOPE_KEY = "genhub.exchange"
OVERHEAD_HEADER = "X-Gateway-Overhead-Ms"

# The ``method`` label's values: anything else a client sends counts as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REST_OVERHEAD = Histogram(
    "genhub_rest_overhead_seconds",
    "Time a REST request spent in the REST layer, outside its gRPC call",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)


@dataclass
class Exchange:
    """One HTTP request in flight."""

    request_id: str
    started: float
    operation: str = "unmatched"
    grpc_seconds: float = 0.0
    _grpc_since: float | None = field(default=None, repr=False)

    @contextlib.contextmanager
    def in_grpc(self) -> Iterator[None]:
        """Count the time inside this block as gRPC time, not REST overhead."""
        since = time.perf_counter()
        try:
            yield
        finally:
            self.grpc_seconds += time.perf_counter() - since

    def overhead_seconds(self) -> float:
        """Time so far outside the gRPC call."""
        return max(0.0, time.perf_counter() - self.started - self.grpc_seconds)


def exchange(scope: Scope) -> Exchange:
    """The exchange the middleware opened for this request."""
    found = scope.get(SCOPE_KEY)
    if not isinstance(found, Exchange):
        raise RuntimeError("ExchangeMiddleware is not installed")
    return found


class ExchangeMiddleware:
    """Gives every request an id (the client's ``X-Request-Id`` if usable, else a new one) and
    stamps every response with it, with ``X-Gateway-Overhead-Ms`` and ``Server-Timing``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = offered if offered is not None and usable_request_id(offered) else new_token()
        current = Exchange(request_id=request_id, started=time.perf_counter())
        scope[SCOPE_KEY] = current
        status = 500  # if the app fails before it answers

        async def stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                overhead = current.overhead_seconds()
                overhead_ms = f"{overhead * 1000:.3f}"
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                headers[OVERHEAD_HEADER] = overhead_ms
                headers.append(
                    "Server-Timing",
                    f"gateway;dur={overhead_ms}, grpc;dur={current.grpc_seconds * 1000:.3f}",
                )
                REST_OVERHEAD.observe(overhead)
            await send(message)

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await stamped(message)

        token = glog.request_id.set(request_id)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            # Answered here, inside the request id, rather than by the server's plain-text 500.
            log.exception("unhandled REST error in %s %s", scope["method"], scope["path"])
            if started:
                raise  # too late for an error answer: the server drops the connection
            internal = RestError(grpc.StatusCode.INTERNAL, "internal error; see server logs")
            await internal.response()(scope, receive, stamped)
        finally:
            glog.request_id.reset(token)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_SERVER_REQUESTS.labels(method, current.operation, str(status)).inc()
            HTTP_SERVER_REQUEST_SECONDS.labels(method, current.operation).observe(
                time.perf_counter() - current.started
            )
