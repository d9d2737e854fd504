"""HTTP semantics of the REST edge (RFC 9110, RFC 9112), route by route where they apply to
every route: HEAD for every GET route, 405 with Allow, OPTIONS, 501 for unknown methods, media
types and charsets (415), content codings (gzip decoded within the limit, bombs 413, unknown
codings 415 with Accept-Encoding), size limits (413, 414, 431), and what the HTTP parser itself
refuses (a 150 KB URL, an oversized header block, malformed chunks) — each answered with GenHub's
JSON error and a request id, on a connection that ends without a reset."""

from __future__ import annotations

import contextlib
import gzip
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from genhub.gateway.config import GatewaySettings
from genhub.gateway.rest import server as rest_server
from genhub.gateway.rest.bindings import load_bindings
from genhub.gateway.rest.body import ACCEPT_ENCODING
from genhub.gateway.rest.edge import HeadLimits
from genhub.gateway.rest.exchange import ExchangeMiddleware
from genhub.gateway.rest.routes import Limits
from tests.support.raw_http import exchange
from tests.support.rest_fakes import asgi_client, grpc_port

__all__ = ["grpc_port"]  # a fixture this module uses

LIMIT = 1024
BINDINGS = load_bindings()
TEXT = {"provider": "demo", "model": "demo-text", "text": {"prompt": "hi"}}
CREATE = "/api/v1/ai/text/task"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@pytest.fixture(scope="module")
async def http(grpc_port: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the REST app in front of the fakes, 1 KiB body limit."""
    async with asgi_client(grpc_port, limits=Limits(max_body_bytes=LIMIT)) as client:
        yield client


@pytest.fixture(scope="module")
async def port(grpc_port: int) -> AsyncIterator[int]:
    """The embedded REST server (uvicorn, h11) in front of the fakes, 1 KiB body limit."""
    settings = GatewaySettings(rest_listen="127.0.0.1:0", rest_max_body_bytes=LIMIT)
    async with rest_server.running(settings, f"127.0.0.1:{grpc_port}") as bound:
        assert bound is not None
        yield bound


def error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The error body, checked for GenHub's shape, status, code and request id."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-Id"]
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code
    return body


def violations(body: dict[str, Any]) -> dict[str, str]:
    """Field to description, from the BadRequest detail."""
    return {
        v["field"]: v["description"]
        for detail in body["details"]
        if detail["@type"] == BAD_REQUEST
        for v in detail["fieldViolations"]
    }


def _sample_path(template: str) -> str:
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "t1" + path[end + 1 :]
    return path


PATHS = sorted({_sample_path(b.template.template) for b in BINDINGS})


def _methods(path: str) -> set[str]:
    return {b.http_method for b in BINDINGS if b.template.match(path) is not None}


def _allow(methods: set[str]) -> str:
    return ", ".join(sorted(methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())))


@pytest.mark.parametrize("path", [p for p in PATHS if "GET" in _methods(p)])
async def test_head_answers_every_get_route_as_get_without_content(
    http: httpx.AsyncClient, path: str
) -> None:
    same = {"X-Request-Id": "head-vs-get"}
    get = await http.get(path, headers=same)
    head = await http.head(path, headers=same)
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers.get("Content-Length") == get.headers.get("Content-Length")
    assert head.headers["X-Request-Id"] == "head-vs-get"


@pytest.mark.parametrize("path", PATHS)
async def test_options_and_405_name_the_methods_of_every_path(
    http: httpx.AsyncClient, path: str
) -> None:
    methods = _methods(path)
    options = await http.options(path)
    assert options.status_code == 204 and options.content == b""
    assert options.headers["Allow"] == _allow(methods)
    assert options.headers["Accept-Encoding"] == ACCEPT_ENCODING
    wrong = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in methods)
    response = await http.request(wrong, path, content=b"{}")
    error(response, 405, 12)
    assert response.headers["Allow"] == _allow(methods)


async def test_options_on_fixed_pages_and_unknown_paths(http: httpx.AsyncClient) -> None:
    for page in ("/openapi.json", "/docs"):
        response = await http.options(page)
        assert response.status_code == 204 and response.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert (await http.head(page)).status_code == 200
    error(await http.options("/api/v1/nothing"), 404, 5)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW"])
async def test_unknown_methods_are_501(http: httpx.AsyncClient, method: str) -> None:
    body = error(await http.request(method, "/api/v1/ai/tasks"), 501, 12)
    assert method in body["message"]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON;Charset="UTF-8"',
        "application/json; charset=utf-8; profile=x",
    ],
)
async def test_json_media_types_are_accepted(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await http.post(CREATE, content=json.dumps(TEXT).encode(), headers=headers)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",  # curl -d without -H
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/jsonx",
        "application/merge-patch+json",
    ],
)
async def test_other_media_types_and_charsets_are_415(
    http: httpx.AsyncClient, content_type: str
) -> None:
    response = await http.post(
        CREATE, content=json.dumps(TEXT).encode(), headers={"Content-Type": content_type}
    )
    body = error(response, 415, 3)
    assert list(violations(body)) == ["Content-Type"]
    assert response.headers["Accept-Post"] == "application/json"
    assert response.headers["Connection"] == "close"


@pytest.mark.parametrize(
    "values",
    [
        ["application/json", "text/plain"],
        ["application/json", "application/json"],
        ["text/plain", "application/json"],
    ],
)
async def test_two_content_types_are_400_saying_the_header_is_repeated(
    http: httpx.AsyncClient, values: list[str]
) -> None:
    # Content-Type is a singleton field (RFC 9110 section 5.3): two of them make a malformed
    # request (400), not one in an unsupported format; the answer says so rather than calling
    # application/json "not accepted".
    headers = [("Content-Type", value) for value in values]
    response = await http.post(CREATE, content=b"{}", headers=headers)
    body = error(response, 400, 3)
    assert violations(body) == {"Content-Type": "is given 2 times; send it once: application/json"}
    assert "not accepted" not in body["message"]
    assert response.headers["Connection"] == "close"


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data)


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZip", gzip.compress),
        ("deflate", _deflate),
        ("identity", lambda data: data),
        ("deflate, gzip", lambda data: gzip.compress(_deflate(data))),
        ("gzip, identity", gzip.compress),
    ],
)
async def test_content_codings_are_decoded(
    http: httpx.AsyncClient, coding: str, encode: Any
) -> None:
    raw = json.dumps(TEXT | {"userId": "coded"}).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    response = await http.post(CREATE, content=encode(raw), headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["userId"] == "coded"


async def test_gzip_with_several_members_is_one_body(http: httpx.AsyncClient) -> None:
    raw = json.dumps(TEXT | {"userId": "members"}).encode()
    content = gzip.compress(raw[:10]) + gzip.compress(raw[10:])
    response = await http.post(CREATE, content=content, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 202 and response.json()["userId"] == "members"


async def test_a_gzip_bomb_is_413_without_inflating_it(http: httpx.AsyncClient) -> None:
    # 50 MB of zeros in about 50 KB; the limit is 1 KiB, so inflating stops after 1 KiB.
    bomb = gzip.compress(b" " * LIMIT * 4)
    assert len(bomb) < LIMIT
    response = await http.post(CREATE, content=bomb, headers={"Content-Encoding": "gzip"})
    body = error(response, 413, 8)
    assert violations(body) == {"body": f"is larger than {LIMIT} bytes once decoded from gzip"}


@pytest.mark.parametrize(
    ("content", "coding"),
    [
        (b"not gzip at all", "gzip"),
        (gzip.compress(b'{"provider": "demo"}')[:-6], "gzip"),  # truncated
        (gzip.compress(b"{}") + b"trailing", "gzip"),
        (zlib.compress(b"{}") + b"x", "deflate"),
        (gzip.compress(b"{}"), "deflate"),  # gzip framing is not the zlib format
    ],
)
async def test_content_that_does_not_decode_is_400(
    http: httpx.AsyncClient, content: bytes, coding: str
) -> None:
    response = await http.post(CREATE, content=content, headers={"Content-Encoding": coding})
    body = error(response, 400, 3)
    assert list(violations(body)) == ["body"]


@pytest.mark.parametrize("coding", ["br", "compress", "zstd", "gzip, br"])
async def test_unknown_content_codings_are_415_naming_the_accepted_ones(
    http: httpx.AsyncClient, coding: str
) -> None:
    response = await http.post(CREATE, content=b"{}", headers={"Content-Encoding": coding})
    body = error(response, 415, 3)
    assert list(violations(body)) == ["Content-Encoding"]
    assert response.headers["Accept-Encoding"] == "gzip, deflate"


async def test_bodies_over_the_limit_are_413(http: httpx.AsyncClient) -> None:
    big = json.dumps(TEXT | {"userId": "x" * LIMIT}).encode()
    error(await http.post(CREATE, content=big), 413, 8)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: refused at the limit
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    error(await http.post(CREATE, content=chunked()), 413, 8)
    exactly = json.dumps(TEXT | {"userId": ""}).encode()
    exactly = exactly.replace(
        b'"userId": ""', b'"userId": "' + b"u" * (LIMIT - len(exactly)) + b'"'
    )
    assert len(exactly) == LIMIT
    assert (await http.post(CREATE, content=exactly)).status_code == 202


async def test_urls_and_header_blocks_over_the_limits_are_414_and_431(
    http: httpx.AsyncClient,
) -> None:
    limits = HeadLimits()
    long_query = "?pageToken=" + "x" * limits.max_url_bytes
    body = error(await http.get("/api/v1/ai/tasks" + long_query), 414, 8)
    assert list(violations(body)) == ["url"]
    headers = {f"X-Filler-{i}": "v" * 1000 for i in range(limits.max_header_bytes // 1000 + 1)}
    body = error(await http.get("/api/v1/ai/tasks", headers=headers), 431, 8)
    assert list(violations(body)) == ["headers"]


async def test_an_unexpected_exception_is_a_json_500_with_the_request_id() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=ExchangeMiddleware(broken))
    async with httpx.AsyncClient(transport=transport, base_url="http://rest.test") as client:
        response = await client.get("/anything", headers={"X-Request-Id": "r-500"})
    assert response.status_code == 500 and response.headers["X-Request-Id"] == "r-500"
    assert response.json() == {
        "code": 13,
        "message": "internal error; see server logs",
        "details": [],
    }


# The real server: what h11 itself refuses, and how connections end.


def _head(target: bytes, *extra: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: rest.test\r\n" + b"".join(extra) + b"\r\n"


# A head the parser cannot finish (no blank line yet) is refused by the parser's buffer limit; a
# complete one that arrived at once is refused after parsing. Both are the same JSON answer.
_UNFINISHED = 1
_COMPLETE = 0


@pytest.mark.parametrize("cut", [_UNFINISHED, _COMPLETE], ids=["unfinished", "complete"])
async def test_a_150_kb_url_is_414_json_on_a_cleanly_closed_connection(port: int, cut: int) -> None:
    request = _head(b"/api/v1/ai/tasks?pageToken=" + b"x" * 150_000)
    if cut == _UNFINISHED:
        request = request[: request.index(b" HTTP/1.1")]  # the request line never ends
    answer = await exchange(port, request)
    assert answer.status == 414
    assert answer.headers["content-type"] == "application/json" and answer.headers["x-request-id"]
    assert answer.json()["code"] == 8
    assert answer.json()["details"][0]["fieldViolations"][0]["field"] == "url"
    assert answer.sent_all and answer.closed_cleanly is not False
    if cut == _UNFINISHED:
        assert answer.closed_cleanly


@pytest.mark.parametrize("cut", [_UNFINISHED, _COMPLETE], ids=["unfinished", "complete"])
async def test_an_oversized_header_block_is_431_json_on_a_cleanly_closed_connection(
    port: int, cut: int
) -> None:
    filler = [b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(100)]
    request = _head(b"/api/v1/ai/tasks", *filler)
    answer = await exchange(port, request[: len(request) - cut * 2])
    assert answer.status == 431 and answer.headers["x-request-id"]
    assert answer.json()["details"][0]["fieldViolations"][0]["field"] == "headers"
    assert answer.sent_all and answer.closed_cleanly is not False
    if cut == _UNFINISHED:
        assert answer.closed_cleanly


async def test_limits_below_the_parser_buffer_are_the_same_answers(port: int) -> None:
    limits = HeadLimits()
    url = await exchange(port, _head(b"/api/v1/ai/tasks?x=" + b"y" * limits.max_url_bytes))
    assert url.status == 414 and url.json()["code"] == 8 and url.headers["x-request-id"]
    filler = [b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(34)]
    block = await exchange(port, _head(b"/api/v1/ai/tasks", *filler))
    assert block.status == 431 and block.headers["x-request-id"]


@pytest.mark.parametrize(
    ("request_bytes", "status", "field"),
    [
        (
            b"POST /api/v1/ai/text/task HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            b"\r\nzz\r\n{}\r\n0\r\n\r\n",
            400,
            "body",
        ),
        (
            b"POST /api/v1/ai/text/task HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n2\r\n{}XX0\r\n\r\n",
            400,
            "body",
        ),
        (b"GARBAGE\r\n\r\n", 400, "request"),
        (b"GET /api/v1/ai/tasks HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", 400, "request"),
        (b"GET /api/v1/ai/tasks HTTP/1.1\r\n\r\n", 400, "request"),  # no Host
        (
            b"POST /api/v1/ai/text/task HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
            b"Content-Length: 3\r\n\r\n{}",
            400,
            "request",
        ),
    ],
    ids=["chunk-size", "chunk-end", "request-line", "header-line", "no-host", "two-lengths"],
)
async def test_what_the_parser_refuses_is_a_json_error(
    port: int, request_bytes: bytes, status: int, field: str
) -> None:
    answer = await exchange(port, request_bytes)
    assert answer.status == status and answer.headers["x-request-id"]
    assert answer.json()["details"][0]["fieldViolations"][0]["field"] == field
    assert answer.closed_cleanly


@pytest.mark.parametrize("escape", [b"%zz", b"%2", b"%", b"%g1", b"%ff"])
async def test_bad_path_escapes_are_400_naming_the_path_on_the_real_server(
    port: int, escape: bytes
) -> None:
    # Sent byte for byte, as h11 passes them on: '%' at the very end of the target included.
    answer = await exchange(port, _head(b"/api/v1/ai/tasks/" + escape))
    assert answer.status == 400 and answer.headers["x-request-id"]
    assert answer.json()["code"] == 3
    assert [v["field"] for v in answer.json()["details"][0]["fieldViolations"]] == ["path"]


async def test_unsupported_transfer_codings_and_http_versions(port: int) -> None:
    coded = b"POST /api/v1/ai/text/task HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"
    answer = await exchange(port, coded)
    assert answer.status == 501 and answer.json()["code"] == 12
    preface = await exchange(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert preface.status == 505 and preface.json()["code"] == 12


async def test_a_body_refused_mid_upload_ends_without_a_reset(port: int) -> None:
    # The client keeps sending 2 MB after the server has answered 413 at 1 KiB; the server
    # drains it before closing, so the client reads the whole answer and an orderly close.
    body = b'{"userId": "' + b"x" * 2_000_000 + b'"}'
    head = (
        b"POST /api/v1/ai/text/task HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    answer = await exchange(port, head + body)
    assert answer.status == 413 and answer.json()["code"] == 8
    assert answer.sent_all and answer.closed_cleanly


async def test_options_asterisk_lists_every_method(port: int) -> None:
    answer = await exchange(port, b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    assert answer.status == 204
    assert answer.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"


async def test_keep_alive_survives_refusals_that_read_the_whole_request(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        with contextlib.suppress(httpx.HTTPError):
            for _ in range(3):
                response = await client.post(CREATE, content=b'{"bogus": 1}')
                assert response.status_code == 400
        assert (await client.get("/api/v1/ai/tasks/t1")).status_code == 200
