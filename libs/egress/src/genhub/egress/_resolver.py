"""Name resolution, behind a protocol so tests can inject a fake DNS (no hosts file, no
internet) and the guarded transport can connect to exactly the address it checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Protocol

from genhub.egress._policy import IPAddress


class Resolver(Protocol):
    """Resolves a host name to its addresses."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host`` (in the order to try them); OSError when there is none."""
        ...


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``, run off the event loop)."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every TCP address of ``host``; OSError (``socket.gaierror``) when there is none."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        return addresses
