"""The gRPC server skeleton every service uses: health, reflection, interceptor, graceful stop.

Health (``grpc.health.v1.Health``) has two kinds of name:

- readiness: ``""`` (the whole server) and each API service name. NOT_SERVING from start until
  ``mark_serving`` (dependencies connected), SERVING until ``drain`` (SIGTERM), then NOT_SERVING
  for good. Kubernetes readiness probes ask for ``""``.
- ``liveness``: SERVING from start to stop, draining included: the process answers, so it must
  not be restarted. Kubernetes liveness probes ask for this name.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from genhub.common import health_servicer as health
from genhub.common.interceptor import ServerInterceptor

log = logging.getLogger(__name__)

# Below Kubernetes' default 30 s termination grace, so in-flight calls finish before SIGKILL.
DEFAULT_GRACE_SECONDS = 20.0
LIVENESS_SERVICE = "liveness"


class Server:
    """A ``grpc.aio`` server with health and reflection; NOT_SERVING until ``mark_serving``.

    ``service_names`` are the API services it serves (none for a health-only server).
    """

    def __init__(
        self,
        service_names: Sequence[str],
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        *,
        max_connection_age: float | None = None,
    ) -> None:
        """``interceptors`` run inside the common one (request id, metrics, error mapping), so
        the GenHub errors they raise reach clients as statuses with details.
        ``max_connection_age`` (seconds) closes each client connection that old (GOAWAY, with
        as long again for calls in flight), so clients resolve the name again and reach
        replicas added since; only for servers whose calls are short (no long streams)."""
        connection_age: list[tuple[str, int]] = []
        if max_connection_age is not None:
            age_ms = int(max_connection_age * 1000)
            connection_age = [
                ("grpc.max_connection_age_ms", age_ms),
                ("grpc.max_connection_age_grace_ms", age_ms),
            ]
        self.grpc = grpc.aio.server(
            interceptors=[ServerInterceptor(), *interceptors],
            options=[
                ("grpc.max_receive_message_length", 32 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                *connection_age,
            ],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self._readiness = ["", *service_names]
        self._draining = False
        reflection.enable_server_reflection(
            [*service_names, reflection.SERVICE_NAME, health.SERVICE_NAME], self.grpc
        )

    def bind(self, address: str) -> int:
        """Listen on ``host:port`` (port 0 picks a free one); returns the port."""
        port = self.grpc.add_insecure_port(address)
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        return port

    @property
    def serving(self) -> bool:
        """Whether readiness is SERVING."""
        return self.health.status("") == health.SERVING

    async def start(self) -> None:
        """Start answering: liveness SERVING, readiness NOT_SERVING until ``mark_serving``."""
        await self._set_readiness(health.NOT_SERVING)
        await self.health.set(LIVENESS_SERVICE, health.SERVING)
        await self.grpc.start()

    async def mark_serving(self) -> None:
        """Report SERVING: call once dependencies are connected. Ignored once draining."""
        if not self._draining:
            await self._set_readiness(health.SERVING)

    async def mark_not_serving(self) -> None:
        """Report NOT_SERVING while a dependency is lost (``mark_serving`` when it is back)."""
        await self._set_readiness(health.NOT_SERVING)

    async def drain(self, delay: float = 0.0) -> None:
        """Report NOT_SERVING for good, then keep answering ``delay`` seconds so that clients
        and endpoint controllers see it before the server stops taking calls."""
        if not self._draining:
            self._draining = True
            await self._set_readiness(health.NOT_SERVING)
            log.info("draining", extra={"delay_seconds": delay})
        if delay > 0:
            await asyncio.sleep(delay)

    async def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        """Drain, end health Watch streams, refuse new calls, let in-flight calls finish
        within ``grace`` seconds."""
        await self.drain()
        await self.health.close()
        await self.grpc.stop(grace)

    async def _set_readiness(self, status: int) -> None:
        for name in self._readiness:
            await self.health.set(name, status)


async def wait_for_signal() -> None:
    """Return on SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    log.info("stop signal received")
