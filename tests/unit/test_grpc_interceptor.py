"""The server interceptor with every handler style grpc.aio accepts, on a real grpc.aio server:
responses, statuses, error details, logs and ``grpc_server_*`` metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import REGISTRY

from genhub.common.errors import InvalidArgument, NotFound, PermissionDenied
from genhub.common.interceptor import ServerInterceptor, code_label, guarded
from tests.support.waiting import eventually

SERVICE = "genhub.test.Styles"
Context = grpc.aio.ServicerContext[bytes, bytes]


# ------------------------------------------------------------------ handlers ----


async def unary_async(request: bytes, context: Context) -> bytes:
    return request.upper()


def unary_sync(request: bytes, context: Any) -> bytes:
    return request[::-1]


async def unary_genhub_error(request: bytes, context: Context) -> bytes:
    raise InvalidArgument.one("image.size", "'3x3' is not allowed")


async def unary_crash(request: bytes, context: Context) -> bytes:
    raise RuntimeError("secret internals")


async def unary_set_code_and_return(request: bytes, context: Context) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    context.set_details("nothing here")
    return b""


async def unary_generated_stub(request: bytes, context: Context) -> bytes:
    # What a generated base servicer does for an RPC the subclass does not implement.
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not implemented!")
    raise NotImplementedError("Method not implemented!")


def unary_generated_stub_sync(request: bytes, context: Any) -> bytes:
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not implemented!")
    raise NotImplementedError("Method not implemented!")


def unary_sync_genhub_error(request: bytes, context: Any) -> bytes:
    raise NotFound("no such thing")


def unary_sync_abort(request: bytes, context: Any) -> bytes:
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")
    return b""


async def unary_abort(request: bytes, context: Context) -> bytes:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")


async def stream_async_generator(request: bytes, context: Context) -> AsyncIterator[bytes]:
    for i in range(3):
        yield request + str(i).encode()


async def stream_writer(request: bytes, context: Context) -> None:
    for i in range(3):
        await context.write(request + str(i).encode())


async def stream_writer_then_error(request: bytes, context: Context) -> None:
    await context.write(b"first")
    raise NotFound("gone mid-stream")


async def stream_generator_then_crash(request: bytes, context: Context) -> AsyncIterator[bytes]:
    yield b"first"
    raise RuntimeError("boom")


async def stream_generator_abort(request: bytes, context: Context) -> AsyncIterator[bytes]:
    yield b"first"
    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")


async def stream_until_cancelled(request: bytes, context: Context) -> AsyncIterator[bytes]:
    yield b"first"
    await asyncio.Event().wait()  # never set: only the client's cancel ends this call


def stream_sync_generator(request: bytes, context: Any) -> Iterator[bytes]:
    for i in range(3):
        yield request + str(i).encode()


async def client_stream_iterator(requests: AsyncIterator[bytes], context: Context) -> bytes:
    return b"+".join([r async for r in requests])


async def client_stream_reader(requests: AsyncIterator[bytes], context: Any) -> bytes:
    parts = []
    while (message := await context.read()) is not grpc.aio.EOF:
        parts.append(message)
    return b"|".join(parts)


def client_stream_sync(requests: Iterator[bytes], context: Any) -> bytes:
    return b",".join(requests)


async def client_stream_error(requests: AsyncIterator[bytes], context: Context) -> bytes:
    async for _ in requests:
        raise InvalidArgument.one("parts", "too many")
    return b""


async def bidi_async_generator(
    requests: AsyncIterator[bytes], context: Context
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request.upper()


async def bidi_writer(requests: AsyncIterator[bytes], context: Context) -> None:
    async for request in requests:
        await context.write(request[::-1])


def bidi_sync_generator(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
    for request in requests:
        yield request * 2


async def bidi_writer_error(requests: AsyncIterator[bytes], context: Context) -> None:
    async for request in requests:
        await context.write(request)
        raise NotFound("stop")


UNARY: dict[str, Callable[..., Any]] = {
    "UnaryAsync": unary_async,
    "UnarySync": unary_sync,
    "UnaryGenHubError": unary_genhub_error,
    "UnaryCrash": unary_crash,
    "UnarySetCode": unary_set_code_and_return,
    "UnaryGeneratedStub": unary_generated_stub,
    "UnaryGeneratedStubSync": unary_generated_stub_sync,
    "UnarySyncGenHubError": unary_sync_genhub_error,
    "UnarySyncAbort": unary_sync_abort,
    "UnaryAbort": unary_abort,
}
SERVER_STREAM: dict[str, Callable[..., Any]] = {
    "StreamAsyncGenerator": stream_async_generator,
    "StreamWriter": stream_writer,
    "StreamWriterThenError": stream_writer_then_error,
    "StreamGeneratorThenCrash": stream_generator_then_crash,
    "StreamGeneratorAbort": stream_generator_abort,
    "StreamSyncGenerator": stream_sync_generator,
    "StreamUntilCancelled": stream_until_cancelled,
}
CLIENT_STREAM: dict[str, Callable[..., Any]] = {
    "ClientStreamIterator": client_stream_iterator,
    "ClientStreamReader": client_stream_reader,
    "ClientStreamSync": client_stream_sync,
    "ClientStreamError": client_stream_error,
}
BIDI: dict[str, Callable[..., Any]] = {
    "BidiAsyncGenerator": bidi_async_generator,
    "BidiWriter": bidi_writer,
    "BidiSyncGenerator": bidi_sync_generator,
    "BidiWriterError": bidi_writer_error,
}


class Gate(grpc.aio.ServerInterceptor):
    """An interceptor of a service's own (as the gateway's auth is), built on ``guarded``:
    calls without ``x-allow: yes`` are refused before their handler runs."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None

        async def admit(context: Any) -> None:
            if ("x-allow", "yes") not in tuple(context.invocation_metadata() or ()):
                raise PermissionDenied("no x-allow", reason="NOT_ALLOWED")

        return guarded(handler, admit)


def styles_server() -> grpc.aio.Server:
    """A server with every handler above, behind the common interceptor and a guard."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    handlers |= {n: grpc.unary_unary_rpc_method_handler(h) for n, h in UNARY.items()}
    handlers |= {n: grpc.unary_stream_rpc_method_handler(h) for n, h in SERVER_STREAM.items()}
    handlers |= {n: grpc.stream_unary_rpc_method_handler(h) for n, h in CLIENT_STREAM.items()}
    handlers |= {n: grpc.stream_stream_rpc_method_handler(h) for n, h in BIDI.items()}
    server = grpc.aio.server(interceptors=[ServerInterceptor(), Gate()])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    return server


# What the guard wants; every helper below sends it unless told otherwise.
ALLOW = (("x-allow", "yes"),)


@pytest.fixture(scope="module")
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the styles server whose calls the guard admits."""
    server = styles_server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as open_channel:
        yield open_channel
    await server.stop(None)


def handled(method: str, kind: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method, "grpc_code": code},
    )
    return value or 0.0


async def wait_handled(method: str, kind: str, code: str, expected: float) -> None:
    """Wait for the count to reach ``expected``: a threaded (sync) handler's bookkeeping may
    finish just after the client has its answer."""

    async def count() -> float:
        return handled(method, kind, code)

    await eventually(count, lambda v: v >= expected, timeout=5, what=f"{method} {code} counted")


def latency_count(method: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "grpc_server_handling_seconds_count",
        {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method},
    )
    return value or 0.0


def path(method: str) -> str:
    return f"/{SERVICE}/{method}"


# The multi-callables are typed for protobuf messages; these calls send raw bytes.


async def unary(
    channel: grpc.aio.Channel, method: str, request: bytes = b"ab", metadata: Any = ALLOW
) -> bytes:
    stub: Any = channel.unary_unary(path(method))
    result = await stub(request, timeout=5, metadata=metadata)
    assert isinstance(result, bytes)
    return result


async def server_stream(
    channel: grpc.aio.Channel,
    method: str,
    into: list[bytes] | None = None,
    metadata: Any = ALLOW,
) -> list[bytes]:
    """The responses, each also appended to ``into`` as it arrives."""
    stub: Any = channel.unary_stream(path(method))
    received = [] if into is None else into
    async for item in stub(b"m", timeout=5, metadata=metadata):
        received.append(item)
    return received


async def client_stream(
    channel: grpc.aio.Channel, method: str, parts: list[bytes], metadata: Any = ALLOW
) -> bytes:
    stub: Any = channel.stream_unary(path(method))
    result = await stub(iter(parts), timeout=5, metadata=metadata)
    assert isinstance(result, bytes)
    return result


async def bidi(
    channel: grpc.aio.Channel,
    method: str,
    parts: list[bytes],
    into: list[bytes] | None = None,
    metadata: Any = ALLOW,
) -> list[bytes]:
    """The responses, each also appended to ``into`` as it arrives."""
    stub: Any = channel.stream_stream(path(method))
    received = [] if into is None else into
    async for item in stub(iter(parts), timeout=5, metadata=metadata):
        received.append(item)
    return received


# ------------------------------------------------------------- unary -> unary ----


@pytest.mark.parametrize(("method", "expected"), [("UnaryAsync", b"AB"), ("UnarySync", b"ba")])
async def test_unary_handlers_answer_and_are_counted(
    channel: grpc.aio.Channel, method: str, expected: bytes
) -> None:
    before = handled(method, "unary", "OK"), latency_count(method, "unary")
    assert await unary(channel, method) == expected
    await wait_handled(method, "unary", "OK", before[0] + 1)
    assert latency_count(method, "unary") >= before[1] + 1


async def test_a_genhub_error_becomes_its_status_with_field_violations(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, "UnaryGenHubError")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad) for detail in status.details)
    assert bad.field_violations[0].field == "image.size"
    await wait_handled("UnaryGenHubError", "unary", "InvalidArgument", 1)


async def test_a_crash_is_internal_with_a_generic_message_and_an_error_log(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="genhub.common.interceptor"),
        pytest.raises(grpc.aio.AioRpcError) as caught,
    ):
        await unary(channel, "UnaryCrash")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    await wait_handled("UnaryCrash", "unary", "Internal", 1)


async def test_a_code_set_on_the_context_is_kept_and_counted(channel: grpc.aio.Channel) -> None:
    before = handled("UnarySetCode", "unary", "NotFound")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, "UnarySetCode")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "nothing here"
    await wait_handled("UnarySetCode", "unary", "NotFound", before + 1)


@pytest.mark.parametrize("method", ["UnaryGeneratedStub", "UnaryGeneratedStubSync"])
async def test_an_unimplemented_stub_answers_unimplemented_without_an_error_log(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, method)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await wait_handled(method, "unary", "Unimplemented", 1)


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("UnaryAbort", grpc.StatusCode.PERMISSION_DENIED),
        ("UnarySyncAbort", grpc.StatusCode.FAILED_PRECONDITION),
        ("UnarySyncGenHubError", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_aborts_and_errors_keep_their_code_in_either_style(
    channel: grpc.aio.Channel, method: str, code: grpc.StatusCode
) -> None:
    before = handled(method, "unary", code_label(code))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, method)
    assert caught.value.code() == code
    await wait_handled(method, "unary", code_label(code), before + 1)


async def test_an_unknown_method_is_unimplemented(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, "NoSuchMethod")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# ------------------------------------------------------------ unary -> stream ----


@pytest.mark.parametrize("method", ["StreamAsyncGenerator", "StreamWriter", "StreamSyncGenerator"])
async def test_every_server_stream_style_streams_and_is_counted(
    channel: grpc.aio.Channel, method: str
) -> None:
    before = handled(method, "server_stream", "OK")
    assert await server_stream(channel, method) == [b"m0", b"m1", b"m2"]
    await wait_handled(method, "server_stream", "OK", before + 1)
    assert latency_count(method, "server_stream") >= 1


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("StreamWriterThenError", grpc.StatusCode.NOT_FOUND),
        ("StreamGeneratorThenCrash", grpc.StatusCode.INTERNAL),
        ("StreamGeneratorAbort", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_a_stream_that_fails_midway_delivers_what_it_sent_then_the_status(
    channel: grpc.aio.Channel, method: str, code: grpc.StatusCode
) -> None:
    received: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server_stream(channel, method, into=received)
    assert received == [b"first"]
    assert caught.value.code() == code
    await wait_handled(method, "server_stream", code_label(code), 1)


# ------------------------------------------------------------ stream -> unary ----


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("ClientStreamIterator", b"a+b+c"),
        ("ClientStreamReader", b"a|b|c"),
        ("ClientStreamSync", b"a,b,c"),
    ],
)
async def test_every_client_stream_style_reads_all_requests(
    channel: grpc.aio.Channel, method: str, expected: bytes
) -> None:
    before = handled(method, "client_stream", "OK")
    assert await client_stream(channel, method, [b"a", b"b", b"c"]) == expected
    await wait_handled(method, "client_stream", "OK", before + 1)


async def test_a_client_stream_error_is_mapped(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client_stream(channel, "ClientStreamError", [b"a"])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ----------------------------------------------------------- stream -> stream ----


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("BidiAsyncGenerator", [b"AB", b"CD"]),
        ("BidiWriter", [b"ba", b"dc"]),
        ("BidiSyncGenerator", [b"abab", b"cdcd"]),
    ],
)
async def test_every_bidi_style_answers_each_request(
    channel: grpc.aio.Channel, method: str, expected: list[bytes]
) -> None:
    before = handled(method, "bidi_stream", "OK")
    assert await bidi(channel, method, [b"ab", b"cd"]) == expected
    await wait_handled(method, "bidi_stream", "OK", before + 1)


async def test_a_bidi_writer_error_ends_the_stream_with_its_status(
    channel: grpc.aio.Channel,
) -> None:
    received: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bidi(channel, "BidiWriterError", [b"x", b"y"], into=received)
    assert received == [b"x"]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    await wait_handled("BidiWriterError", "bidi_stream", "NotFound", 1)


async def test_a_stream_the_client_cancels_is_counted_as_canceled(
    channel: grpc.aio.Channel,
) -> None:
    before = handled("StreamUntilCancelled", "server_stream", "Canceled")
    stub: Any = channel.unary_stream(path("StreamUntilCancelled"))
    call = stub(b"m", metadata=ALLOW)
    assert await call.read() == b"first"
    call.cancel()
    await wait_handled("StreamUntilCancelled", "server_stream", "Canceled", before + 1)


def test_code_labels_are_go_grpc_prometheus_spellings() -> None:
    assert code_label(grpc.StatusCode.OK) == "OK"
    assert code_label(grpc.StatusCode.CANCELLED) == "Canceled"
    assert code_label(grpc.StatusCode.DEADLINE_EXCEEDED) == "DeadlineExceeded"
    assert code_label(grpc.StatusCode.UNAVAILABLE) == "Unavailable"


# ------------------------------------------------------------------ guards ----

STYLE_CALLS: list[tuple[str, str]] = [
    *((name, "unary") for name in ("UnaryAsync", "UnarySync")),
    *(
        (name, "server_stream")
        for name in ("StreamAsyncGenerator", "StreamWriter", "StreamSyncGenerator")
    ),
    *(
        (name, "client_stream")
        for name in ("ClientStreamIterator", "ClientStreamReader", "ClientStreamSync")
    ),
    *((name, "bidi") for name in ("BidiAsyncGenerator", "BidiWriter", "BidiSyncGenerator")),
]


async def call_style(channel: grpc.aio.Channel, method: str, kind: str, metadata: Any) -> Any:
    if kind == "unary":
        return await unary(channel, method, metadata=metadata)
    if kind == "server_stream":
        return await server_stream(channel, method, metadata=metadata)
    if kind == "client_stream":
        return await client_stream(channel, method, [b"a", b"b"], metadata=metadata)
    return await bidi(channel, method, [b"ab"], metadata=metadata)


@pytest.mark.parametrize(("method", "kind"), STYLE_CALLS)
async def test_a_guard_refuses_every_handler_style_before_it_runs(
    channel: grpc.aio.Channel, method: str, kind: str
) -> None:
    """An interceptor built on ``guarded`` (as the gateway's auth is) keeps each style working
    when it admits, and ends the call with its error, mapped, when it refuses."""
    assert await call_style(channel, method, kind, ALLOW)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_style(channel, method, kind, ())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == "no x-allow"
