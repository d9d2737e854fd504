"""The REST dispatcher: matches a request to its HTTP binding (404 and 405 otherwise), transcodes
it, and calls the gateway's own gRPC server over a loopback channel, exactly as grpc-gateway
does, so interceptors, validation and error mapping are the gRPC ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from genhub.gateway.rest import body, query, streaming, transcode
from genhub.gateway.rest.bindings import Binding
from genhub.gateway.rest.edge import KNOWN_METHODS
from genhub.gateway.rest.errors import RestError
from genhub.gateway.rest.exchange import exchange
from genhub.gateway.rest.headers import (
    IDEMPOTENCY_HEADER,
    outgoing_metadata,
    response_headers,
    timeout_seconds,
)
from genhub.gateway.rest.paths import MalformedEscapeError, PathTemplate

log = logging.getLogger(__name__)
IDEMPOTENCY_FIELD = "idempotency_key"
TASK_SERVICE = "genhub.v1.TaskService"


@dataclass(frozen=True)
class Limits:
    """What the dispatcher allows and how long it waits."""

    max_body_bytes: int = 8 * 1024 * 1024
    call_timeout_seconds: float | None = 120.0
    sse_heartbeat_seconds: float = 15.0


@dataclass(frozen=True)
class TaskLinks:
    """Where a created task can be followed: the GetTask, CancelTask and WatchTask paths."""

    status: PathTemplate
    cancel: PathTemplate | None
    watch: PathTemplate | None

    @classmethod
    def from_bindings(cls, bindings: Sequence[Binding]) -> TaskLinks | None:
        """The links, from the primary bindings of TaskService's methods."""
        primary = {
            b.method.name: b.template
            for b in bindings
            if b.index == 0 and b.method.containing_service.full_name == TASK_SERVICE
        }
        if "GetTask" not in primary:
            return None
        return cls(primary["GetTask"], primary.get("CancelTask"), primary.get("WatchTask"))

    def headers(self, task_id: str) -> dict[str, str]:
        """``Location`` (the status URL) and ``Link`` (status, cancel and watch URLs)."""
        values = {"task_id": task_id}
        location = self.status.expand(values)
        links = [f'<{location}>; rel="status"']
        if self.cancel is not None:
            links.append(f'<{self.cancel.expand(values)}>; rel="cancel"')
        if self.watch is not None:
            links.append(f'<{self.watch.expand(values)}>; rel="watch"')
        return {"Location": location, "Link": ", ".join(links)}


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.decode("latin-1").split("?", 1)[0]
    return quote(str(scope["path"]))


def _bad_path(exc: UnicodeDecodeError | MalformedEscapeError) -> RestError:
    """The 400 for a path value that does not percent-decode, naming ``path``."""
    if isinstance(exc, UnicodeDecodeError):
        return RestError.bad_request("path", "percent-escapes must be UTF-8")
    return RestError.bad_request("path", str(exc))


async def _nothing() -> AsyncIterator[bytes]:
    # No content and no Content-Length: a stream's length is not known in advance.
    return
    yield b""  # pragma: no cover - makes this an async generator


def allow_header(methods: set[str]) -> str:
    """The ``Allow`` value for a resource answering ``methods``: HEAD wherever GET is
    (RFC 9110 section 9.3.2), and OPTIONS everywhere."""
    allowed = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
    return ", ".join(sorted(allowed))


class Dispatcher:
    """An ASGI app answering every path that is not a fixed page (docs, OpenAPI): 404 when no
    binding has the path, 405 with ``Allow`` when none has the method, OPTIONS with ``Allow``,
    HEAD as GET without content."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        bindings: Sequence[Binding],
        limits: Limits,
        stopping: asyncio.Event,
    ) -> None:
        # Most specific first: a template with a verb or more literal segments wins a tie.
        self._bindings = sorted(bindings, key=lambda b: b.template.specificity, reverse=True)
        self._limits = limits
        self._stopping = stopping
        self._links = TaskLinks.from_bindings(bindings)
        self._unary: dict[str, grpc.aio.UnaryUnaryMultiCallable[Any, Any]] = {}
        self._stream: dict[str, grpc.aio.UnaryStreamMultiCallable[Any, Any]] = {}
        for binding in bindings:
            serializer: Callable[[Any], bytes] = binding.request_class.SerializeToString
            deserializer: Callable[[bytes], Any] = binding.response_class.FromString
            if binding.streaming:
                self._stream[binding.grpc_path] = channel.unary_stream(
                    binding.grpc_path,
                    request_serializer=serializer,
                    response_deserializer=deserializer,
                )
            else:
                self._unary[binding.grpc_path] = channel.unary_unary(
                    binding.grpc_path,
                    request_serializer=serializer,
                    response_deserializer=deserializer,
                )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        request = Request(scope, receive)
        try:
            response = await self._handle(request)
        except RestError as exc:
            response = exc.response()
        except ClientDisconnect:
            return  # nobody is left to answer
        except Exception:
            # Answered here rather than by Starlette's outermost handler, so that even this
            # response carries the request id and overhead headers.
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            internal = RestError(grpc.StatusCode.INTERNAL, "internal error; see server logs")
            response = internal.response()
        await response(scope, receive, send)

    def route(self, method: str, raw_path: str) -> tuple[Binding, dict[str, str]]:
        """The binding for ``method`` (HEAD finds GET's) and ``raw_path`` with its decoded path
        values; ``RestError`` 404 when no template matches, 405 (with ``Allow``) when only the
        method is wrong."""
        wanted = "GET" if method == "HEAD" else method
        allowed: set[str] = set()
        for binding in self._bindings:
            try:
                values = binding.template.match(raw_path)
            except (UnicodeDecodeError, MalformedEscapeError) as exc:
                raise _bad_path(exc) from None
            if values is None:
                continue
            if binding.http_method == wanted:
                return binding, values
            allowed.add(binding.http_method)
        if allowed:
            raise RestError(
                grpc.StatusCode.UNIMPLEMENTED,
                "Method Not Allowed",
                status=405,
                headers={"Allow": allow_header(allowed)},
            )
        raise RestError(grpc.StatusCode.NOT_FOUND, "Not Found", status=404)

    def options(self, raw_path: str) -> Response:
        """``204`` with ``Allow`` for ``raw_path`` (every method of the server for ``*``);
        ``RestError`` 404 when no binding has the path."""
        if raw_path == "*":
            methods = set(KNOWN_METHODS)
        else:
            methods = set()
            for binding in self._bindings:
                try:
                    if binding.template.match(raw_path) is not None:
                        methods.add(binding.http_method)
                except (UnicodeDecodeError, MalformedEscapeError) as exc:
                    raise _bad_path(exc) from None
            if not methods:
                raise RestError(grpc.StatusCode.NOT_FOUND, "Not Found", status=404)
        headers = {"Allow": allow_header(methods), "Accept-Encoding": body.ACCEPT_ENCODING}
        return Response(status_code=204, headers=headers)

    async def _handle(self, request: Request) -> Response:
        current = exchange(request.scope)
        raw_path = _raw_path(request.scope)
        if request.method == "OPTIONS":
            return self.options(raw_path)
        binding, values = self.route(request.method, raw_path)
        current.operation = binding.operation_id
        content = await body.read(request, self._limits.max_body_bytes) if binding.body else b""
        params = query.parse(request.scope.get("query_string", b""))
        message = transcode.build_request(binding, values, params, content)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        fields = message.DESCRIPTOR.fields_by_name
        # The body's idempotency_key wins; the header fills it only when the body has none.
        if key and IDEMPOTENCY_FIELD in fields and not getattr(message, IDEMPOTENCY_FIELD):
            setattr(message, IDEMPOTENCY_FIELD, key)
        metadata = outgoing_metadata(
            request.headers, current.request_id, request.client.host if request.client else None
        )
        grpc_timeout = timeout_seconds(request.headers)
        if binding.streaming:
            return await self._call_stream(request, binding, message, metadata, grpc_timeout)
        return await self._call_unary(request, binding, message, metadata, grpc_timeout)

    async def _call_unary(
        self,
        request: Request,
        binding: Binding,
        message: Any,
        metadata: list[tuple[str, str | bytes]],
        grpc_timeout: float | None,
    ) -> Response:
        current = exchange(request.scope)
        call = self._unary[binding.grpc_path](
            message,
            metadata=metadata,
            timeout=grpc_timeout if grpc_timeout is not None else self._limits.call_timeout_seconds,
        )
        with current.in_grpc():
            try:
                reply = await call
                initial = await call.initial_metadata()
            except grpc.aio.AioRpcError as exc:
                raise RestError.from_rpc(exc) from None
        payload = transcode.render(binding, reply)
        headers = response_headers(initial)
        if binding.creates_task and self._links is not None and isinstance(payload, dict):
            headers.update(self._links.headers(str(payload.get("taskId", ""))))
            return JSONResponse(payload, status_code=202, headers=headers)
        return JSONResponse(payload, headers=headers)

    async def _call_stream(
        self,
        request: Request,
        binding: Binding,
        message: Any,
        metadata: list[tuple[str, str | bytes]],
        grpc_timeout: float | None,
    ) -> Response:
        current = exchange(request.scope)
        call = self._stream[binding.grpc_path](message, metadata=metadata, timeout=grpc_timeout)
        # Read the first message before answering, so a call that fails at once (not found,
        # invalid) gets its own HTTP status rather than a 200 with an error line.
        with current.in_grpc():
            try:
                first = await call.read()
                initial = await call.initial_metadata()
            except grpc.aio.AioRpcError as exc:
                raise RestError.from_rpc(exc) from None
            except asyncio.CancelledError:
                call.cancel()
                raise
        encoder = streaming.encoder_for(request.headers.get("accept", ""))
        if request.method == "HEAD":
            # The status and headers of the stream, without following it.
            call.cancel()
            return StreamingResponse(
                _nothing(),
                media_type=encoder.media_type,
                headers=response_headers(initial) | {"Cache-Control": "no-cache"},
            )
        heartbeat = (
            self._limits.sse_heartbeat_seconds
            if encoder.media_type == streaming.EVENT_STREAM
            else None
        )
        headers = response_headers(initial)
        headers["Cache-Control"] = "no-cache"
        # Tell buffering proxies (nginx) to pass each frame on at once.
        headers["X-Accel-Buffering"] = "no"
        return StreamingResponse(
            streaming.relay(
                call,
                first,
                lambda m: transcode.render(binding, m),
                encoder,
                heartbeat_seconds=heartbeat,
                stopping=self._stopping,
            ),
            media_type=encoder.media_type,
            headers=headers,
        )
