"""Kubernetes HTTP probes on the REST port.

``GET /healthz`` (liveness): 200 while the process answers; the REST server shares the
gateway's event loop, so an answer means the process is not wedged.
``GET /readyz`` (readiness): the gateway's own gRPC health (``grpc.health.v1.Health/Check`` of
the whole server, over the loopback channel REST already uses): 200 when SERVING; otherwise
503 with the error body of every REST error. SERVING means the gateway's dependencies were
connected at start and it is not draining (genhub.common.server).
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from genhub.gateway.rest.errors import RestError
from genhub.gateway.rest.exchange import exchange

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
# A probe must answer quickly; the kubelet's own timeout is 1 s by default.
_CHECK_TIMEOUT = 0.8


def routes(channel: grpc.aio.Channel) -> list[BaseRoute]:
    """The two probe routes, asking the gRPC server behind ``channel``."""
    stub: Any = health_pb2_grpc.HealthStub(channel)  # typed for sync channels only

    async def healthz(request: Request) -> Response:
        exchange(request.scope).operation = "healthz"
        return JSONResponse({"status": "SERVING"})

    async def readyz(request: Request) -> Response:
        exchange(request.scope).operation = "readyz"
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=_CHECK_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            status = f"health check failed: {exc.code().name}"
        else:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return JSONResponse({"status": name})
            status = name
        return RestError(grpc.StatusCode.UNAVAILABLE, f"not ready: {status}").response()

    return [
        Route(HEALTHZ_PATH, healthz, methods=["GET"]),
        Route(READYZ_PATH, readyz, methods=["GET"]),
    ]
