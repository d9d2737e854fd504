"""A real HTTP server on loopback for tests (uvicorn in the test's event loop), serving any
Starlette app on an ephemeral port; and a fake DNS for the egress rules."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping

import uvicorn
from starlette.types import ASGIApp

from genhub.egress._policy import IPAddress


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1; yields the port, stops on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.wait_for(server.listening.wait(), 10)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()


class StaticResolver:
    """A fake DNS: host names answer the listed addresses, anything else does not resolve.
    Tests use it to make a public-looking name point at 10.1.2.3 without a hosts file."""

    def __init__(self, table: Mapping[str, list[str]]) -> None:
        self._table = {k.lower(): [ipaddress.ip_address(a) for a in v] for k, v in table.items()}
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        try:
            return list(self._table[host.lower()])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} not in the fake DNS") from None
