"""GenHub errors as gRPC statuses with ``google.rpc`` details (ErrorInfo, BadRequest, RetryInfo);
the server interceptor (genhub.common.interceptor) ends failed calls with them."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from genhub.common.errors import GenHubError, InvalidArgument

ERROR_DOMAIN = "genhub.dev"


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
