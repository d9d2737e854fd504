"""The gRPC server skeleton every service uses: health, reflection, interceptor, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from genhub.common.grpc_errors import ServerInterceptor

log = logging.getLogger(__name__)

# Below Kubernetes' default 30 s termination grace, so in-flight calls finish before SIGKILL.
DEFAULT_GRACE_SECONDS = 20.0


class Server:
    """A ``grpc.aio`` server with health and reflection; NOT_SERVING until ``mark_serving``."""

    def __init__(
        self,
        service_names: Sequence[str],
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        """``interceptors`` run inside the common one (so their errors are mapped too)."""
        self.grpc = grpc.aio.server(
            interceptors=[ServerInterceptor(), *interceptors],
            options=[
                ("grpc.max_receive_message_length", 32 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self._service_names = list(service_names)
        reflection.enable_server_reflection(
            [*self._service_names, reflection.SERVICE_NAME, health.SERVICE_NAME], self.grpc
        )

    def bind(self, address: str) -> int:
        """Listen on ``host:port`` (port 0 picks a free one); returns the port."""
        port = self.grpc.add_insecure_port(address)
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        return port

    async def start(self) -> None:
        """Start answering (health stays NOT_SERVING until ``mark_serving``)."""
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.grpc.start()

    async def mark_serving(self) -> None:
        """Report SERVING: call once dependencies are connected."""
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        """Report NOT_SERVING, refuse new calls, let in-flight calls finish within ``grace``."""
        await self.health.enter_graceful_shutdown()
        await self.grpc.stop(grace)


async def wait_for_signal() -> None:
    """Return on SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    log.info("stop signal received")
