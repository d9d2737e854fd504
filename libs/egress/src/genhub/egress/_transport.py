"""An httpx transport whose every TCP connection goes to an address the policy allows.

The check sits where the socket is opened (httpcore's network backend), not before the request:
the host is resolved once, every address is checked, and the connection is made to one of
those very addresses. A DNS answer that changes between a check and a connect (DNS rebinding)
therefore cannot redirect the request, and keep-alive connections are only reused for the same
origin. TLS still verifies the certificate for, and sends SNI with, the URL's host name, because
httpcore takes both from the request's origin, not from the address connected to.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

from genhub.egress._errors import EgressRefused
from genhub.egress._policy import EgressPolicy, IPAddress, ip_literal
from genhub.egress._resolver import Resolver, SystemResolver

log = logging.getLogger(__name__)
SocketOption = Any  # httpcore's SOCKET_OPTION union
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class _GuardedBackend(AsyncNetworkBackend):
    """httpcore's default backend, with resolution and the address rules in front."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = ip_literal(host)
        if literal is not None:
            refusal = self._policy.address_refusal(literal)
            if refusal is not None:
                raise EgressRefused(f"points at {literal}, {refusal}")
            return [literal]
        try:
            addresses = await self._resolver.resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        if self._policy.host_allowed(host):
            return addresses
        # Every address must pass, not just the first: an attacker's name may list a public
        # address next to 10.0.0.1 and let a retry on another address do the damage.
        for address in addresses:
            refusal = self._policy.address_refusal(address)
            if refusal is not None:
                raise EgressRefused(f"{host} resolves to {address}, {refusal}")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        """Connect to the first reachable checked address of ``host``."""
        last: Exception | None = None
        for address in await self._addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        """Unix sockets are never a user's target."""
        raise EgressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate (httpcore's retry pauses)."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` that connects only to addresses ``policy`` allows.

    Environment proxies are ignored (a proxy would connect for us, past the checks). Raises
    ``EgressRefused`` from ``handle_async_request`` when the host is refused; httpx's own
    exceptions otherwise.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None = None,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # httpx has no public hook for httpcore's network backend, so the pool httpx just built
        # is replaced by the same pool with ours (httpx and httpcore are pinned in the lock).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_GuardedBackend(policy, resolver or SystemResolver()),
        )
