"""The server interceptor: request ids, access metrics, and GenHub errors mapped to gRPC statuses
with ``google.rpc`` details (ErrorInfo, BadRequest, RetryInfo)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

from genhub.common import logging as glog
from genhub.common.errors import GenHubError, InvalidArgument
from genhub.common.ids import new_token

log = logging.getLogger(__name__)

ERROR_DOMAIN = "genhub.dev"
REQUEST_ID_HEADER = "x-request-id"

RPC_TOTAL = Counter("genhub_grpc_requests_total", "gRPC requests handled", ["method", "code"])
RPC_SECONDS = Histogram("genhub_grpc_request_seconds", "gRPC request latency", ["method"])


def to_status(error: GenHubError) -> grpc.Status:
    """The gRPC status, with details, that carries ``error`` to the client."""
    details: list[Message] = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
        )
    ]
    if isinstance(error, InvalidArgument):
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    if error.retry_after is not None:
        details.append(
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(
                    seconds=int(error.retry_after),
                    nanos=int((error.retry_after % 1) * 1e9),
                )
            )
        )
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    status = status_pb2.Status(code=error.code.value[0], message=error.message, details=packed)
    return rpc_status.to_status(status)


def internal_status() -> grpc.Status:
    """A generic INTERNAL status: the cause is logged, never sent to the client."""
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; see server logs")
    )


def _bind_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    incoming = dict(context.invocation_metadata() or ())
    rid = str(incoming.get(REQUEST_ID_HEADER) or new_token())
    glog.request_id.set(rid)
    glog.task_id.set("")


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """One place for what every RPC needs: request id, metrics, error mapping."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


async def _abort(method: str, context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> str:
    """End the call with the status ``exc`` stands for; returns the code's name for metrics."""
    if isinstance(exc, GenHubError):
        await context.abort_with_status(to_status(exc))
        return exc.code.name
    log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort_with_status(internal_status())
    return "INTERNAL"


def _wrap_unary(method: str, behavior: Any) -> Any:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        _bind_request_id(context)
        started = time.perf_counter()
        code = "OK"
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            code = "ABORTED_BY_HANDLER"
            raise
        except Exception as exc:
            code = exc.code.name if isinstance(exc, GenHubError) else "INTERNAL"
            await _abort(method, context, exc)
        finally:
            RPC_TOTAL.labels(method, code).inc()
            RPC_SECONDS.labels(method).observe(time.perf_counter() - started)

    return wrapped


def _wrap_stream(method: str, behavior: Any) -> Any:
    async def wrapped(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        _bind_request_id(context)
        code = "OK"
        try:
            async for item in behavior(request, context):
                yield item
        except grpc.aio.AbortError:
            code = "ABORTED_BY_HANDLER"
            raise
        except Exception as exc:
            code = exc.code.name if isinstance(exc, GenHubError) else "INTERNAL"
            await _abort(method, context, exc)
        finally:
            RPC_TOTAL.labels(method, code).inc()

    return wrapped
