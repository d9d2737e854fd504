"""Server-streaming RPCs over HTTP: newline-delimited JSON as grpc-gateway writes it
(``{"result": ...}`` per message, ``{"error": ...}`` on failure), or Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from genhub.gateway.rest.errors import rpc_status, status_body

NDJSON = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"
_SHUTTING_DOWN = {
    "code": grpc.StatusCode.UNAVAILABLE.value[0],
    "message": "the server is shutting down; watch again",
    "details": [],
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Encoder(Protocol):
    """Frames stream items for one wire format."""

    media_type: str

    def result(self, payload: Any) -> bytes:
        """One response message."""

    def error(self, status: dict[str, Any]) -> bytes:
        """The error that ended the stream."""

    def end(self) -> bytes:
        """The normal end of the stream."""

    def heartbeat(self) -> bytes:
        """A no-op frame that keeps idle connections open through proxies."""


class NdjsonEncoder:
    """grpc-gateway's stream format: one JSON object per line."""

    media_type = NDJSON

    def result(self, payload: Any) -> bytes:
        """``{"result": payload}``."""
        return (_dumps({"result": payload}) + "\n").encode()

    def error(self, status: dict[str, Any]) -> bytes:
        """``{"error": status}``."""
        return (_dumps({"error": status}) + "\n").encode()

    def end(self) -> bytes:
        """Nothing: the body just ends."""
        return b""

    def heartbeat(self) -> bytes:
        """Nothing: a blank line would break line-by-line JSON readers."""
        return b""


class SseEncoder:
    """Server-Sent Events: ``result`` events carry the payload, one ``error`` event carries a
    failure, and an ``end`` event tells ``EventSource`` clients to close rather than reconnect."""

    media_type = EVENT_STREAM

    def result(self, payload: Any) -> bytes:
        """An ``event: result``."""
        return f"event: result\ndata: {_dumps(payload)}\n\n".encode()

    def error(self, status: dict[str, Any]) -> bytes:
        """An ``event: error``."""
        return f"event: error\ndata: {_dumps(status)}\n\n".encode()

    def end(self) -> bytes:
        """An ``event: end``."""
        return b"event: end\ndata: {}\n\n"

    def heartbeat(self) -> bytes:
        """An SSE comment line."""
        return b": keep-alive\n\n"


def encoder_for(accept: str) -> Encoder:
    """SSE when the client accepts ``text/event-stream``, else NDJSON."""
    return SseEncoder() if EVENT_STREAM in accept.lower() else NdjsonEncoder()


async def relay(
    call: grpc.aio.UnaryStreamCall[Any, Any],
    first: Any,
    render: Callable[[Message], Any],
    encoder: Encoder,
    *,
    heartbeat_seconds: float | None,
    stopping: asyncio.Event,
) -> AsyncIterator[bytes]:
    """Frame ``first`` (already read, or ``grpc.aio.EOF``) and every later message of ``call``;
    an RPC error becomes the last frame.

    The call is cancelled when the client goes away (this generator is closed) or the stream
    ends, so the gRPC side never outlives the HTTP response. When ``stopping`` is set (server
    shutdown) the stream ends with an UNAVAILABLE error, so clients know to reconnect.
    """
    pending: asyncio.Future[Any] | None = None
    stop = asyncio.ensure_future(stopping.wait())
    try:
        if first is grpc.aio.EOF:
            if frame := encoder.end():
                yield frame
            return
        yield encoder.result(render(first))
        while True:
            pending = asyncio.ensure_future(call.read())
            while True:
                # Wait without cancelling the read, so an idle stream can send heartbeats.
                done, _ = await asyncio.wait(
                    {pending, stop}, timeout=heartbeat_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                if pending in done:
                    break
                if stop in done:
                    yield encoder.error(_SHUTTING_DOWN)
                    return
                if frame := encoder.heartbeat():
                    yield frame
            item = pending.result()
            pending = None
            if item is grpc.aio.EOF:
                if frame := encoder.end():
                    yield frame
                return
            yield encoder.result(render(item))
    except grpc.aio.AioRpcError as exc:
        yield encoder.error(status_body(rpc_status(exc)))
    finally:
        stop.cancel()
        if pending is not None and not pending.done():
            pending.cancel()
        call.cancel()
