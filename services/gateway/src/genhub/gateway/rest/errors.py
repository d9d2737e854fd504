"""Errors in grpc-gateway's shape: ``{"code", "message", "details"}`` with the HTTP status that
grpc-gateway gives each gRPC code, for failed RPCs and for requests that never reach one."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from starlette.responses import JSONResponse

from genhub.common.errors import FieldViolation

STATUS_DETAILS_KEY = "grpc-status-details-bin"

# grpc-gateway's runtime.HTTPStatusFromCode.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def code_of(number: int) -> grpc.StatusCode:
    """The status code with gRPC number ``number`` (UNKNOWN for numbers gRPC does not define)."""
    return _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status grpc-gateway answers for ``code``."""
    return HTTP_STATUS.get(code, 500)


class RestError(Exception):
    """A failure to answer with the error body; ``status`` overrides the code's HTTP status
    (413 for an oversized body, 404/405 for routing)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        details: Sequence[Message] = (),
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        message = printable(message)
        super().__init__(message)
        packed = []
        for detail in details:
            item = any_pb2.Any()
            item.Pack(detail)
            packed.append(item)
        self.status = status_pb2.Status(code=code.value[0], message=message, details=packed)
        self.http_status = status or http_status(code)
        self.headers = dict(headers or {})

    @classmethod
    def bad_request(
        cls,
        field: str,
        description: str,
        message: str | None = None,
        *,
        code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RestError:
        """INVALID_ARGUMENT (400) with a BadRequest detail naming ``field``; ``code``,
        ``status`` and ``headers`` for refusals with their own HTTP status (413, 415, ...)."""
        error = cls.invalid([FieldViolation(field, description)], code=code, status=status)
        if message is not None:
            error.status.message = printable(message)
        error.headers.update(headers or {})
        return error

    @classmethod
    def invalid(
        cls,
        violations: Sequence[FieldViolation],
        *,
        code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
        status: int | None = None,
    ) -> RestError:
        """A refusal listing every violation in one BadRequest, with the message the gRPC
        side's ``InvalidArgument`` writes: ``invalid request: <field>: <why>; ...``."""
        items = [
            error_details_pb2.BadRequest.FieldViolation(
                field=printable(v.field), description=printable(v.description)
            )
            for v in violations
        ]
        summary = "; ".join(f"{v.field}: {v.description}" for v in items)
        return cls(
            code,
            f"invalid request: {summary}",
            details=[error_details_pb2.BadRequest(field_violations=items)],
            status=status,
        )

    @classmethod
    def from_rpc(cls, error: grpc.aio.AioRpcError) -> RestError:
        """The error a failed RPC answers with, details decoded from its status trailer."""
        status = rpc_status(error)
        made = cls(code_of(status.code), status.message)
        made.status = status
        made.headers.update(_status_headers(status))
        return made

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        """This error as an HTTP response."""
        return JSONResponse(
            status_body(self.status),
            status_code=self.http_status,
            headers={**self.headers, **(headers or {})},
        )


def _status_headers(status: status_pb2.Status) -> dict[str, str]:
    """HTTP headers a status implies: ``Retry-After`` (whole seconds, rounded up; RFC 9110
    section 10.2.3) from a RetryInfo detail, ``WWW-Authenticate`` on 401 (RFC 6750)."""
    headers: dict[str, str] = {}
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
            headers["Retry-After"] = str(max(1, math.ceil(delay)))
    if status.code == grpc.StatusCode.UNAUTHENTICATED.value[0]:
        headers["WWW-Authenticate"] = 'Bearer realm="genhub"'
    return headers


def printable(text: str) -> str:
    """``text`` as valid UTF-8: a client's unpaired surrogates (legal in JSON escapes, not in
    UTF-8) are written as ``\\udxxx`` so that echoing them cannot fail the response."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def rpc_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a failed call: the rich status from its trailer when the
    server sent one (and it agrees with the call's code), else code and message alone."""
    code = error.code()
    number = code.value[0] if code is not None else grpc.StatusCode.UNKNOWN.value[0]
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                break
            if status.code == number:
                return status
    return status_pb2.Status(code=number, message=error.details() or "")


def status_body(status: status_pb2.Status) -> dict[str, Any]:
    """``status`` in proto3 JSON, every key present, details as ``Any`` with ``@type``."""
    return {
        "code": status.code,
        "message": status.message,
        "details": [_any_json(detail) for detail in status.details],
    }


def _any_json(detail: any_pb2.Any) -> dict[str, Any]:
    try:
        return json_format.MessageToDict(detail)
    except (TypeError, KeyError, json_format.Error):
        # A detail type this process has no descriptor for: pass it through undecoded.
        return {
            "@type": detail.type_url,
            "value": base64.b64encode(detail.value).decode("ascii"),
        }
