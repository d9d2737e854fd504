"""HTTP/1.1 over a raw socket, for requests an HTTP client library will not send (a 150 KB URL,
a malformed chunk, a bad request line) and for watching how the server ends the connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawResponse:
    """What came back: the first response, whether the whole request could be written, and
    whether the server then closed the connection with an orderly FIN rather than a reset."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent_all: bool
    closed_cleanly: bool | None  # None: the server kept the connection open

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


async def exchange(port: int, request: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send ``request`` (written in pieces while the answer is read) to 127.0.0.1:``port``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> bool:
        try:
            for start in range(0, len(request), 16 * 1024):
                writer.write(request[start : start + 16 * 1024])
                await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            return False
        return True

    sending = asyncio.create_task(send())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
        closed: bool | None = None
        if headers.get("connection", "").lower() == "close":
            try:
                rest = await asyncio.wait_for(reader.read(), timeout)
                closed = rest == b""
            except ConnectionResetError:
                closed = False
        sent_all = await asyncio.wait_for(sending, timeout)
    finally:
        sending.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return RawResponse(int(status_line.split()[1]), headers, body, sent_all, closed)
