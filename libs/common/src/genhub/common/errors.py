"""GenHub's error tree. Each error knows its gRPC status code and whether a retry may succeed.

Errors are translated at two borders only: adapters map driver and SDK exceptions into this tree,
and the server interceptor (`genhub.common.interceptor`) maps it out to gRPC statuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. ``image.size``) and why it is bad."""

    field: str
    description: str


class GenHubError(Exception):
    """Root of every GenHub error."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).upper()
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after


class InvalidArgument(GenHubError):
    """The request is malformed; ``violations`` name each bad field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        self.violations = list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request: {summary}", reason="INVALID_ARGUMENT")

    @classmethod
    def one(cls, field: str, description: str) -> InvalidArgument:
        """An error for a single bad field."""
        return cls([FieldViolation(field, description)])


class NotFound(GenHubError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(GenHubError):
    """A resource with the same unique key exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(GenHubError):
    """A concurrent change won (a compare-and-set lost); re-read and retry."""

    code = grpc.StatusCode.ABORTED


class Unauthenticated(GenHubError):
    """No credentials, or credentials that name no live API key."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(GenHubError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(GenHubError):
    """A rate limit or quota refused the request; ``retry_after`` says when to try again."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retryable = True


class FailedPrecondition(GenHubError):
    """The resource is not in a state that allows the operation."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(GenHubError):
    """A dependency is down; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE
    retryable = True


class StoreError(Unavailable):
    """The task store (MongoDB or the task-store service) could not be reached."""


class BrokerError(Unavailable):
    """RabbitMQ could not be reached or refused a publish."""


class Internal(GenHubError):
    """A server-side bug (gRPC INTERNAL/UNKNOWN/DATA_LOSS from a GenHub service): retrying the
    same request will fail the same way, so callers must not loop on it."""

    code = grpc.StatusCode.INTERNAL
