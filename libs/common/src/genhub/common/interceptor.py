"""The server interceptor every GenHub gRPC server runs: request ids, ``grpc_server_*``
metrics, and GenHub errors mapped to gRPC statuses with details.

It wraps every handler style ``grpc.aio`` servers accept, keeping the style, because the server
picks how to run a handler from what the handler *is* (grpc ``_cython/_cygrpc/aio/server``):

=================  ======================================================================
unary response     ``async def`` returning the response; or a plain function (run in a
                   thread, with a synchronous context)
stream response    ``async def`` generator yielding responses; or ``async def`` writing
                   with ``await context.write()`` and returning None; or a plain generator
                   (run in a thread)
stream request     the same, taking an async iterator of requests (a plain iterator for
                   the threaded styles)
=================  ======================================================================

How a call ends decides its status:

- returns: the code the handler set with ``context.set_code`` (OK if none);
- ``context.abort(...)``: that status, untouched;
- raises a ``GenHubError``: its code, message and ``google.rpc`` details
  (genhub.common.grpc_errors);
- raises after ``context.set_code(code)``, or raises ``NotImplementedError`` (what generated
  base servicers do for an RPC a servicer lacks): that code (UNIMPLEMENTED), logged at INFO;
- raises anything else: INTERNAL with a generic message; the cause is logged at ERROR.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any

import grpc

from genhub.common import logging as glog
from genhub.common import metrics
from genhub.common.errors import GenHubError
from genhub.common.grpc_errors import internal_status, to_status
from genhub.common.ids import new_token

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_UNIMPLEMENTED_DETAILS = "Method not implemented!"


def code_label(code: grpc.StatusCode) -> str:
    """The ``grpc_code`` label value: Go's ``codes.Code.String()`` (``OK``, ``Canceled``,
    ``InvalidArgument``, ...), as go-grpc-prometheus reports it."""
    if code == grpc.StatusCode.OK:
        return "OK"
    if code == grpc.StatusCode.CANCELLED:
        return "Canceled"
    return "".join(part.capitalize() for part in code.name.split("_"))


class _Call:
    """One RPC's bookkeeping: its labels, start time and final code."""

    def __init__(self, kind: str, method: str, context: Any) -> None:
        _, _, path = method.partition("/")
        service, _, name = path.partition("/")
        self.labels = (kind, service, name)
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()
        metrics.GRPC_SERVER_STARTED.labels(*self.labels).inc()
        incoming = dict(context.invocation_metadata() or ())
        glog.request_id.set(str(incoming.get(REQUEST_ID_HEADER) or new_token()))
        glog.task_id.set("")

    def status_of(self, exc: Exception, set_code: Any, set_details: Any) -> grpc.Status:
        """The status a handler that raised ``exc`` ends with; logs it as the docstring says."""
        method = "/".join(self.labels[1:])
        if isinstance(exc, GenHubError):
            status = to_status(exc)
        elif isinstance(set_code, grpc.StatusCode) and set_code != grpc.StatusCode.OK:
            status = _Status(set_code, str(set_details or ""))
        elif isinstance(exc, NotImplementedError):
            status = _Status(grpc.StatusCode.UNIMPLEMENTED, _UNIMPLEMENTED_DETAILS)
        else:
            log.exception("unhandled error in %s", method, exc_info=exc)
            return internal_status()
        if not isinstance(exc, GenHubError):
            log.info("%s ended with %s: %s", method, status.code.name, status.details)
        return status

    def finish(self, context: Any) -> None:
        """Record the call as handled, with ``self.code`` unless the context says otherwise."""
        code = self.code
        if code == grpc.StatusCode.OK:
            set_code = _context_code(context)
            if set_code is not None:
                code = set_code
        metrics.GRPC_SERVER_HANDLED.labels(*self.labels, code_label(code)).inc()
        metrics.GRPC_SERVER_HANDLING_SECONDS.labels(*self.labels).observe(
            time.perf_counter() - self.started
        )


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = ()


def _context_code(context: Any) -> grpc.StatusCode | None:
    code = context.code() if hasattr(context, "code") else None
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # grpc.aio reports the numeric code
        return next((c for c in grpc.StatusCode if c.value[0] == code), None)
    return None


class _RecordingContext:
    """A synchronous servicer context that remembers ``set_code``/``set_details``, which the
    threaded (sync) context of ``grpc.aio`` cannot report back."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self.recorded_code: grpc.StatusCode | None = None
        self.recorded_details: str | None = None

    def set_code(self, code: grpc.StatusCode) -> None:
        self.recorded_code = code
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        self.recorded_details = details
        self._context.set_details(details)

    def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self.recorded_code = code
        self._context.abort(code, details, trailing_metadata)

    def code(self) -> grpc.StatusCode | None:
        return self.recorded_code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _is_async(behavior: Callable[..., Any]) -> bool:
    # The same test grpc.aio applies to decide how to run a handler.
    return inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)


async def _abort(call: _Call, context: Any, exc: Exception) -> None:
    status = call.status_of(exc, _context_code(context), _details(context))
    call.code = status.code
    await context.abort(status.code, status.details, status.trailing_metadata)


def _abort_sync(call: _Call, context: _RecordingContext, exc: Exception) -> None:
    status = call.status_of(exc, context.recorded_code, context.recorded_details)
    call.code = status.code
    context.abort(status.code, status.details, status.trailing_metadata)


def _details(context: Any) -> str | None:
    details = context.details() if hasattr(context, "details") else None
    if isinstance(details, bytes):
        return details.decode("utf-8", "replace")
    return details if isinstance(details, str) else None


def _ended(call: _Call, context: Any) -> None:
    """Note how a call that did not return ended: aborted by the handler, or cancelled."""
    code = _context_code(context)
    if code is None or code == grpc.StatusCode.OK:
        # Cancelled by the client (or its deadline); an abort always sets a code.
        code = grpc.StatusCode.CANCELLED
    call.code = code


# -------------------------------------------------------- unary responses ----


def _unary_response(kind: str, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    if not _is_async(behavior):
        return _sync_unary_response(kind, method, behavior)

    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call = _Call(kind, method, context)
        try:
            return await behavior(request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            _ended(call, context)
            raise
        except Exception as exc:
            await _abort(call, context, exc)
        finally:
            call.finish(context)

    return wrapped


def _sync_unary_response(
    kind: str, method: str, behavior: Callable[..., Any]
) -> Callable[..., Any]:
    def wrapped(request: Any, context: Any) -> Any:
        call = _Call(kind, method, context)
        recording = _RecordingContext(context)
        try:
            return behavior(request, recording)
        except grpc.aio.AbortError:
            _ended(call, recording)
            raise
        except Exception as exc:
            _abort_sync(call, recording, exc)
        finally:
            call.finish(recording)

    return wrapped


# ------------------------------------------------------- stream responses ----


def _stream_response(kind: str, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):
        return _async_generator_response(kind, method, behavior)
    if inspect.iscoroutinefunction(behavior):
        return _writer_response(kind, method, behavior)
    return _sync_stream_response(kind, method, behavior)


def _async_generator_response(
    kind: str, method: str, behavior: Callable[..., AsyncIterator[Any]]
) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call = _Call(kind, method, context)
        try:
            async for item in behavior(request, context):
                yield item
        except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
            _ended(call, context)
            raise
        except Exception as exc:
            await _abort(call, context, exc)
        finally:
            call.finish(context)

    return wrapped


def _writer_response(
    kind: str, method: str, behavior: Callable[..., Awaitable[None]]
) -> Callable[..., Awaitable[None]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        call = _Call(kind, method, context)
        try:
            await behavior(request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            _ended(call, context)
            raise
        except Exception as exc:
            await _abort(call, context, exc)
        finally:
            call.finish(context)

    return wrapped


def _sync_stream_response(
    kind: str, method: str, behavior: Callable[..., Iterator[Any]]
) -> Callable[..., Iterator[Any]]:
    def wrapped(request: Any, context: Any) -> Iterator[Any]:
        call = _Call(kind, method, context)
        recording = _RecordingContext(context)
        try:
            yield from behavior(request, recording)
        except (grpc.aio.AbortError, GeneratorExit):
            _ended(call, recording)
            raise
        except Exception as exc:
            _abort_sync(call, recording, exc)
        finally:
            call.finish(recording)

    return wrapped


# ------------------------------------------------------------------ guards ----

Check = Callable[[Any], Coroutine[Any, Any, None]]


def guarded(
    handler: grpc.RpcMethodHandler[Any, Any], check: Check
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with ``await check(context)`` run first, in the handler's own style and
    context, for interceptors of their own (authentication, admission): whatever ``check``
    raises ends the call as its handler would have (this module's interceptor maps it).

    Threaded (sync) handlers run ``check`` on the event loop this is called from (an
    interceptor's ``intercept_service`` runs there) and wait for it.
    """
    loop = asyncio.get_running_loop()

    def wrap(behavior: Callable[..., Any], streams: bool) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                await check(context)
                async for item in behavior(request, context):
                    yield item

            return stream
        if inspect.iscoroutinefunction(behavior):

            async def call(request: Any, context: Any) -> Any:
                await check(context)
                return await behavior(request, context)

            return call
        if streams:
            # gRPC calls a threaded stream handler on the loop (only its iteration runs in a
            # thread), so the check must wait for the first item, inside the generator.

            def sync_stream(request: Any, context: Any) -> Iterator[Any]:
                asyncio.run_coroutine_threadsafe(check(context), loop).result()
                yield from behavior(request, context)

            return sync_stream

        def sync_call(request: Any, context: Any) -> Any:
            asyncio.run_coroutine_threadsafe(check(context), loop).result()
            return behavior(request, context)

        return sync_call

    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary, False), **codec)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream, True), **codec)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary, False), **codec)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream, True), **codec)
    return handler


# ------------------------------------------------------------ interceptor ----


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """One place for what every RPC needs: request id, metrics, error mapping."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler, wrapped in the same style; None (UNIMPLEMENTED) if unknown."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary_response("unary", method, handler.unary_unary), **codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _stream_response("server_stream", method, handler.unary_stream), **codec
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _unary_response("client_stream", method, handler.stream_unary), **codec
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _stream_response("bidi_stream", method, handler.stream_stream), **codec
            )
        return handler
