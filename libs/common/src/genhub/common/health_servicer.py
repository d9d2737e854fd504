"""The standard gRPC health service (``grpc.health.v1.Health``): Check, Watch and List.

Source: grpc/grpc ``doc/health-checking.md`` and ``src/proto/grpc/health/v1/health.proto``.
Check answers NOT_FOUND for a service it does not know; Watch streams the current status and
every change (SERVICE_UNKNOWN for an unknown service, never an error); List returns every
service's status. Our own implementation rather than ``grpc_health.v1.health.aio``: that one
has no List in the pinned version (its inherited stub raises), and its Watch streams never end,
so a server with a watching client always waited its full stop grace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The installed type stubs lag the proto (no List messages, untyped enum): reach the messages
# through an untyped alias, and hold statuses as the ints they are.
_pb: Any = health_pb2
SERVING: int = _pb.HealthCheckResponse.SERVING
NOT_SERVING: int = _pb.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = _pb.HealthCheckResponse.SERVICE_UNKNOWN
SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Health statuses by service name ("" is the whole server), settable at any time."""

    def __init__(self) -> None:
        self._statuses: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._closed = False

    def status(self, service: str = "") -> int:
        """The current status of ``service`` (SERVICE_UNKNOWN if never set)."""
        return self._statuses.get(service, SERVICE_UNKNOWN)

    async def set(self, service: str, status: int) -> None:
        """Set one service's status; watchers of it are sent the change."""
        async with self._changed:
            self._statuses[service] = status
            self._changed.notify_all()

    async def close(self) -> None:
        """End every Watch stream (after sending its last status): the server is stopping."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        """The service's status now; NOT_FOUND for an unknown service."""
        status = self._statuses.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        """The service's status now, then each change, until the server stops."""
        sent: int | None = None
        while True:
            status, closed = await self._next(request.service, sent)
            if status != sent:
                yield health_pb2.HealthCheckResponse(status=status)
                sent = status
            if closed:
                return

    async def _next(self, service: str, sent: int | None) -> tuple[int, bool]:
        """Wait until ``service``'s status differs from ``sent`` or the servicer closes."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed or self.status(service) != sent)
            return self.status(service), self._closed

    async def List(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        """Every known service's status (a snapshot): a ``HealthListResponse``."""
        return _pb.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._statuses.items()
            }
        )
