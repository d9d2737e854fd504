"""The HTTP/1.1 connection: uvicorn's h11 protocol, with GenHub's own answers for the requests
its parser refuses, and connections that close without a reset.

Out of the box, a request h11 cannot parse (a 150 KB URL, a header block over the parser's
buffer, a malformed chunk, a bad header line) gets uvicorn's ``400 text/plain`` with no request
id, and the socket is closed while the client is still sending, so the kernel answers the
unread bytes with a reset and the client often sees only that. Here:

* the answer is GenHub's JSON error with ``X-Request-Id``: ``414`` when the request line alone
  overflows the parser's buffer, ``431`` when the header block does (RFC 9112 section 3, RFC
  6585 section 5), ``501`` for a transfer coding h11 does not implement, ``400`` otherwise;
* a connection closed while the client may still be sending (after such an error, or after an
  answer that did not read the whole body: 413, 415) is closed *lingering*, as Apache and nginx
  do: the server sends FIN, reads and drops what still arrives for up to ``LINGER_SECONDS``,
  then closes. The client reads the whole answer and an orderly end of stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import grpc
import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol
from uvicorn.server import ServerState

from genhub.common.ids import new_token
from genhub.common.metrics import HTTP_SERVER_REQUESTS
from genhub.gateway.rest.edge import HeadLimits, headers_too_large, url_too_long
from genhub.gateway.rest.errors import RestError, status_body
from genhub.gateway.rest.exchange import SCOPE_KEY, Exchange

log = logging.getLogger(__name__)

LINGER_SECONDS = 2.0
_BYTES_SUFFIX = re.compile(r":?\s*bytearray\(.*$", re.DOTALL)
_PARSER_OPERATION = "unparsed"


class _Connection(h11.Connection):
    """An h11 server connection that remembers why it failed, and how long the request line of
    the request being read is (to tell 414 from 431 when the head overflows the buffer)."""

    def __init__(self, max_incomplete_event_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self.error: h11.RemoteProtocolError | None = None
        self.line_length: int | None = None  # None: the request line has not ended yet
        self._line_so_far = 0

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client."""
        if self.line_length is None and self.their_state is h11.IDLE:
            end = data.find(b"\n")
            if end < 0:
                self._line_so_far += len(data)
            else:
                self.line_length = self._line_so_far + end
        super().receive_data(data)

    def next_event(self) -> Any:
        """The next event; a parse failure is remembered, then raised."""
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise

    def start_next_cycle(self) -> None:
        """Ready for the next request on this connection."""
        super().start_next_cycle()
        self.line_length = None
        self._line_so_far = 0


class _LingeringTransport(asyncio.Transport):
    """A transport whose ``close()`` lingers while the client may still be sending."""

    def __init__(self, inner: asyncio.Transport, protocol: GenHubH11Protocol) -> None:
        super().__init__()
        self._inner = inner
        self._protocol = protocol
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        """Close now, or half-close and drain first if the client is still sending."""
        if self._closing:
            return
        self._closing = True
        inner = self._inner
        if self._protocol.peer_still_sending() and inner.can_write_eof() and not inner.is_closing():
            self._protocol.lingering = True
            inner.write_eof()  # after what is buffered: the answer goes out first
            inner.resume_reading()
            self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, inner.close)
        else:
            inner.close()

    def connection_lost(self) -> None:
        """The socket is gone: no more lingering."""
        if self._timer is not None:
            self._timer.cancel()
        self._closing = True

    def is_closing(self) -> bool:
        """Whether ``close()`` was called (or the socket is closing)."""
        return self._closing or self._inner.is_closing()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``."""
        self._inner.write(data)

    def write_eof(self) -> None:
        """Half-close."""
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        """Whether half-closing is possible."""
        return self._inner.can_write_eof()

    def abort(self) -> None:
        """Close at once, dropping buffered data."""
        self._closing = True
        self._inner.abort()

    def pause_reading(self) -> None:
        """Stop reading (flow control), unless draining before close."""
        if not self._protocol.lingering:
            self._inner.pause_reading()

    def resume_reading(self) -> None:
        """Read again."""
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        """Whether reading."""
        return self._inner.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Socket details (peer name, SSL object)."""
        return self._inner.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        """Bytes waiting to be sent."""
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """Flow-control water marks."""
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set flow-control water marks."""
        self._inner.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Hand the socket to another protocol."""
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The protocol reading the socket."""
        return self._inner.get_protocol()


def protocol_for(limits: HeadLimits) -> type[GenHubH11Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``, with its parser buffer set from
    ``limits`` (``h11_max_incomplete_event_size`` need not be set as well)."""
    return type("GenHubH11Protocol", (GenHubH11Protocol,), {"head_limits": limits})


class GenHubH11Protocol(H11Protocol):
    """uvicorn's h11 protocol answering parse failures with GenHub's JSON errors and closing
    connections without resets (see the module docstring). Use ``protocol_for``."""

    head_limits = HeadLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Replaces uvicorn's connection: the same parser, bounded by HeadLimits.
        self.parser_buffer_bytes = self.head_limits.parser_buffer_bytes
        self.parser = _Connection(self.parser_buffer_bytes)
        self.conn = self.parser
        self.lingering = False
        self._lingering_transport: _LingeringTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected."""
        assert isinstance(transport, asyncio.Transport)
        self._lingering_transport = _LingeringTransport(transport, self)
        super().connection_made(self._lingering_transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket closed."""
        if self._lingering_transport is not None:
            self._lingering_transport.connection_lost()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Bytes from the client; dropped unread while lingering before close."""
        if not self.lingering:
            super().data_received(data)

    def peer_still_sending(self) -> bool:
        """Whether the client may still be sending: mid-body, mid-error, or bytes not parsed."""
        if self.conn.their_state in (h11.SEND_BODY, h11.ERROR):
            return True
        return bool(self.conn.trailing_data[0])

    def send_400_response(self, msg: str) -> None:
        """Answer a request the parser refused (uvicorn calls this for every parse failure)."""
        error = self._refusal()
        request_id = self._request_id()
        status = error.http_status
        # The request line may not even have parsed: its method is not a label value to trust.
        HTTP_SERVER_REQUESTS.labels("other", _PARSER_OPERATION, str(status)).inc()
        log.warning(
            "REST request refused by the HTTP parser",
            extra={"status": status, "request_id": request_id, "reason": error.status.message},
        )
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = json.dumps(
                status_body(error.status), ensure_ascii=False, separators=(",", ":")
            ).encode()
            headers = [
                *self.server_state.default_headers,  # Date
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
            ]
            reason = STATUS_PHRASES.get(status, b"")
            for event in (
                h11.Response(status_code=status, headers=headers, reason=reason),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
        if self.cycle is not None and not self.cycle.response_complete:
            # The application is still waiting for this request's body: it is told the client
            # left, and anything it sends is dropped.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    def _refusal(self) -> RestError:
        exc = self.parser.error
        limits = self.head_limits
        if exc is not None and exc.error_status_hint == 431:
            # h11 stopped buffering a head that never ended: blame the request line when it
            # is itself over the URL limit (or has not ended), else the header block.
            line = self.parser.line_length
            if line is None or line > limits.max_url_bytes:
                return url_too_long(line or self.parser_buffer_bytes, limits)
            return headers_too_large(self.parser_buffer_bytes, limits)
        # h11 appends the offending bytes ("illegal chunk header: bytearray(b'zz\\r\\n')").
        why = _BYTES_SUFFIX.sub("", str(exc))[:200] if exc is not None else "malformed request"
        in_body = self.cycle is not None and not self.cycle.response_complete
        where = "body" if in_body else "request"
        if exc is not None and exc.error_status_hint == 501:
            return RestError(grpc.StatusCode.UNIMPLEMENTED, f"not implemented: {why}", status=501)
        return RestError.bad_request(where, f"is not valid HTTP/1.1: {why}")

    def _request_id(self) -> str:
        if self.cycle is not None:
            scope: dict[str, Any] = dict(self.cycle.scope)
            current = scope.get(SCOPE_KEY)
            if isinstance(current, Exchange):
                return current.request_id
        return new_token()
