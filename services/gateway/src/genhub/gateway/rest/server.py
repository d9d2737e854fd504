"""Runs the REST app on uvicorn inside the gateway's own event loop, proxying to the gateway's
gRPC server over a loopback channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator, Sequence

import grpc
import uvicorn
from starlette.routing import BaseRoute

from genhub.common.server import DEFAULT_GRACE_SECONDS
from genhub.gateway.config import GatewaySettings
from genhub.gateway.rest.app import create_app
from genhub.gateway.rest.edge import HeadLimits
from genhub.gateway.rest.protocol import protocol_for
from genhub.gateway.rest.routes import Limits

log = logging.getLogger(__name__)

# The gRPC server may send up to 64 MiB (genhub.common.server); the proxy must accept as much.
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port); ``ValueError`` if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def loopback_target(grpc_listen: str, port: int) -> str:
    """The address this process reaches its own gRPC server at, listening on ``grpc_listen``
    (bound to ``port``): the loopback address when it listens on every interface."""
    host, _ = split_address(grpc_listen)
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind(address: str) -> socket.socket:
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; with proto 0 every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    return sock


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves SIGTERM/SIGINT to the gateway (which stops REST before gRPC) and
    reports when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """No signal handlers of uvicorn's own."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then set ``listening``."""
        await super().startup(sockets=sockets)
        self.listening.set()


@contextlib.asynccontextmanager
async def running(
    settings: GatewaySettings, grpc_target: str, extra_routes: Sequence[BaseRoute] = ()
) -> AsyncIterator[int | None]:
    """Serve REST on ``settings.rest_listen`` (None, and nothing served, when it is empty),
    proxying to the gRPC server at ``grpc_target``, plus ``extra_routes``; yields the port."""
    if not settings.rest_listen:
        yield None
        return
    sock = _bind(settings.rest_listen)
    channel = grpc.aio.insecure_channel(grpc_target, options=_CHANNEL_OPTIONS)
    stopping = asyncio.Event()
    head_limits = HeadLimits()
    app = create_app(
        channel,
        limits=Limits(
            max_body_bytes=settings.rest_max_body_bytes,
            call_timeout_seconds=settings.rest_call_timeout_seconds,
            sse_heartbeat_seconds=settings.rest_sse_heartbeat_seconds,
        ),
        cors_origins=settings.rest_cors_origins,
        docs_enabled=settings.rest_docs,
        stopping=stopping,
        extra_routes=extra_routes,
        head_limits=head_limits,
    )
    config = uvicorn.Config(
        app,
        lifespan="off",
        # h11 always (never httptools, whatever is installed), bounded explicitly, with
        # GenHub's answers for what it cannot parse (rest.protocol).
        http=protocol_for(head_limits),
        h11_max_incomplete_event_size=head_limits.parser_buffer_bytes,
        ws="none",
        log_config=None,  # keep the gateway's JSON logging
        log_level="warning",  # uvicorn's start/stop chatter; "REST serving" is logged here
        access_log=False,
        server_header=False,
        # The client address stays the peer's; X-Forwarded-For travels on as metadata instead.
        proxy_headers=False,
        timeout_graceful_shutdown=int(DEFAULT_GRACE_SECONDS),
    )
    server = _EmbeddedServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
    if not listening.done():
        listening.cancel()
        await channel.close()
        sock.close()
        serving.result()  # re-raises why uvicorn stopped, if it raised
        raise RuntimeError("REST server stopped during startup")
    port = int(sock.getsockname()[1])
    log.info("REST serving", extra={"port": port, "grpc_target": grpc_target})
    try:
        yield port
    finally:
        # Open streams end with an UNAVAILABLE frame, so uvicorn's drain does not wait on them.
        stopping.set()
        server.should_exit = True
        await serving
        await channel.close()
        sock.close()
