"""The REST app against in-process fake services on a real gRPC server (with GenHub's
interceptor): metadata in both directions, request ids, 202 links, nested path variables,
streams, CORS, docs, and failures of the gRPC side itself. No infrastructure needed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import statistics
import time

import grpc
import httpx
import pytest

from genhub.gateway.config import GatewaySettings
from genhub.gateway.rest import server as rest_server
from tests.support.rest import SseParser, ndjson
from tests.support.rest_fakes import asgi_client, grpc_port, http

__all__ = ["grpc_port", "http"]  # fixtures this module uses


async def test_headers_travel_as_metadata_and_the_request_id_reaches_the_interceptor(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get(
        "/api/v1/ai/task/result/t1",
        headers={
            "Authorization": "Bearer secret",
            "Idempotency-Key": "k1",
            "X-Request-Id": "req-42",
            "Grpc-Metadata-Tenant": "acme",
            "Grpc-Metadata-Trace-Bin": base64.b64encode(b"\x00\x01").decode(),
            "X-Unlisted": "not forwarded",
        },
    )
    assert response.status_code == 200
    seen = response.json()["labels"]
    assert seen["authorization"] == "Bearer secret"
    assert seen["idempotency-key"] == "k1"
    assert seen["x-request-id"] == "req-42" and seen["bound-request-id"] == "req-42"
    assert seen["tenant"] == "acme"
    assert seen["trace-bin"] == base64.b64encode(b"\x00\x01").decode()
    assert "x-unlisted" not in seen and "x-forwarded-for" in seen
    assert response.headers["X-Request-Id"] == "req-42"
    assert response.headers["Grpc-Metadata-X-Served-By"] == "fake"


async def test_request_id_is_made_when_absent_or_unusable(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-Request-Id": "has spaces"}):
        response = await http.get("/api/v1/ai/tasks/t2", headers=headers)
        made = response.headers["X-Request-Id"]
        assert len(made) == 24 and made != "has spaces"
        assert response.json()["labels"]["bound-request-id"] == made


async def test_every_response_reports_its_overhead(http: httpx.AsyncClient) -> None:
    for path in ("/api/v1/ai/tasks/t3", "/api/v1/nowhere", "/api/v1/ai/task/result/missing"):
        response = await http.get(path)
        assert float(response.headers["X-Gateway-Overhead-Ms"]) >= 0
        timing = response.headers["Server-Timing"]
        assert timing.startswith("gateway;dur=") and ", grpc;dur=" in timing


async def test_create_answers_202_with_links_and_the_idempotency_header(
    http: httpx.AsyncClient,
) -> None:
    body = {"provider": "demo", "model": "demo-text", "text": {"prompt": "hi"}, "userId": "u"}
    response = await http.post("/api/v1/ai/text/task", json=body, headers={"Idempotency-Key": "h"})
    assert response.status_code == 202
    assert response.json()["idempotencyKey"] == "h"
    assert response.headers["Location"] == "/api/v1/ai/task/result/new%2F1"
    assert response.headers["Link"] == (
        '</api/v1/ai/task/result/new%2F1>; rel="status", '
        '</api/v1/ai/task/new%2F1:cancel>; rel="cancel", '
        '</api/v1/ai/task/new%2F1:watch>; rel="watch"'
    )
    # The body's key wins over the header.
    response = await http.post(
        "/api/v1/ai/text/task",
        json=body | {"idempotencyKey": "from-body"},
        headers={"Idempotency-Key": "h"},
    )
    assert response.json()["idempotencyKey"] == "from-body"


async def test_query_parameters_reach_the_request(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/api/v1/ai/tasks",
        params=[
            ("userId", "u9"),
            ("type", "2"),
            ("status", "TASK_STATUS_FAILED"),
            ("page_size", "7"),
            ("pageToken", "next"),
        ],
    )
    assert response.status_code == 200
    assert response.json() == {
        "tasks": [
            response.json()["tasks"][0]
            | {
                "userId": "u9",
                "type": "TASK_TYPE_VIDEO",
                "status": "TASK_STATUS_FAILED",
                "attempts": 7,
            }
        ],
        "nextPageToken": "next",
    }


async def test_nested_path_variables_and_named_bodies(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/api/v1/providers/demo/models/m%201",
        json={"type": "TASK_TYPE_TEXT", "maxTokens": 3, "sizes": ["1x1", "2x2"]},
    )
    assert response.status_code == 200, response.text
    model = response.json()
    assert model["model"] == "m 1" and model["displayName"] == "demo"
    assert model["maxTokens"] == 3 and model["sizes"] == ["1x1", "2x2"]

    response = await http.put(
        "/api/v1/providers/acme/config", json={"apiBase": "https://a.example", "timeout": "2.5s"}
    )
    config = response.json()
    assert config["provider"] == "acme" and config["timeout"] == "2.500s"


async def test_verb_routes_and_field_masks_in_the_query(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/users:findByEmail", params={"email": "ada@example.com"})
    assert response.json()["email"] == "ada@example.com"

    response = await http.patch(
        "/api/v1/users/u7", params={"updateMask": "displayName,email"}, json={"displayName": "A"}
    )
    user = response.json()
    assert user["userId"] == "u7" and user["displayName"] == "A"
    assert user["email"] == "display_name,email"


async def test_watch_as_ndjson_ends_with_the_error_line(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/ai/task/vanishes:watch")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    lines = ndjson(response.text)
    assert [line["result"]["status"] for line in lines[:2]] == [
        "TASK_STATUS_QUEUED",
        "TASK_STATUS_RUNNING",
    ]
    assert lines[2]["error"]["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert len(lines) == 3


async def test_watch_as_server_sent_events(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/ai/task/t5:watch", headers={"Accept": "text/event-stream"})
    assert response.headers["Content-Type"].startswith("text/event-stream")
    parser = SseParser()
    parser.feed(response.text)
    assert [e.event for e in parser.events] == ["result", "result", "result", "end"]
    assert parser.events[2].json()["status"] == "TASK_STATUS_SUCCEEDED"


async def test_a_stream_failing_at_once_gets_its_http_status(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/ai/task/missing:watch")
    assert response.status_code == 404
    assert response.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert response.json()["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


async def test_grpc_timeout_header_sets_the_deadline(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/ai/task/result/slow", headers={"Grpc-Timeout": "50m"})
    assert response.status_code == 504
    assert response.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


@pytest.mark.parametrize("value", ["9999999H", "2562047H", "99999999H"])
async def test_huge_grpc_timeouts_are_capped_not_an_instant_504(
    http: httpx.AsyncClient, value: str
) -> None:
    # Uncapped, these overflow grpc's deadline arithmetic and the call fails at once.
    response = await http.get("/api/v1/ai/tasks/t1", headers={"Grpc-Timeout": value})
    assert response.status_code == 200, response.text
    assert response.json()["taskId"] == "t1"


def _path_violation(response: httpx.Response) -> str:
    """The description of the 400's one field violation, which must name ``path``."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert response.headers["X-Request-Id"]
    (bad,) = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    (violation,) = bad["fieldViolations"]
    assert violation["field"] == "path"
    return str(violation["description"])


@pytest.mark.parametrize("escape", ["%zz", "%2", "%", "%g1", "a%zzb"])
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/api/v1/ai/tasks/{}"),
        ("GET", "/api/v1/ai/task/result/{}"),
        ("POST", "/api/v1/ai/task/{}:cancel"),
        ("DELETE", "/api/v1/providers/p/models/{}"),
        ("OPTIONS", "/api/v1/ai/tasks/{}"),
    ],
)
async def test_malformed_path_escapes_are_400_naming_the_path(
    http: httpx.AsyncClient, method: str, template: str, escape: str
) -> None:
    # Not a lookup of a resource literally named '%zz' (404), which unquote() would make it.
    response = await http.request(method, template.format(escape))
    assert "is not a percent-escape" in _path_violation(response)


async def test_non_utf8_path_escapes_are_400_naming_the_path(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/ai/tasks/%ff")
    assert _path_violation(response) == "percent-escapes must be UTF-8"


async def test_bin_metadata_that_is_not_base64_is_400_naming_the_header(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/api/v1/ai/tasks/t1", headers={"Grpc-Metadata-Foo-Bin": "!!!"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert body["details"][0]["fieldViolations"] == [
        {"field": "grpc-metadata-foo-bin", "description": "'!!!' is not base64 (standard alphabet)"}
    ]


async def test_oversized_body_is_413(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/ai/text/task", json={"text": {"prompt": "x" * 2000}})
    assert response.status_code == 413
    assert response.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


async def test_unreachable_grpc_server_is_503() -> None:
    async with asgi_client(1) as client:
        response = await client.get("/api/v1/ai/task/result/t")
    assert response.status_code == 503
    assert response.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


async def test_cors_is_off_by_default(http: httpx.AsyncClient) -> None:
    origin = {"Origin": "https://app.example"}
    response = await http.get("/api/v1/ai/tasks/t", headers=origin)
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await http.options(
        "/api/v1/ai/text/task", headers=origin | {"Access-Control-Request-Method": "POST"}
    )
    # An ordinary OPTIONS answer: without Access-Control-Allow-Origin the browser refuses.
    assert preflight.status_code == 204 and preflight.headers["Allow"] == "OPTIONS, POST"
    assert not any(name.startswith("access-control-") for name in preflight.headers)


async def test_cors_for_configured_origins(grpc_port: int) -> None:
    async with asgi_client(grpc_port, cors_origins=["https://app.example"]) as client:
        preflight = await client.options(
            "/api/v1/ai/text/task",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        response = await client.get("/api/v1/ai/tasks/t", headers={"Origin": "https://app.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]
        other = await client.get("/api/v1/ai/tasks/t", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        refused = await client.options(
            "/api/v1/ai/text/task",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "TRACE"},
        )
        assert refused.status_code == 400 and refused.headers["X-Request-Id"]
        assert refused.json()["details"][0]["fieldViolations"] == [
            {"field": "Origin", "description": "is not allowed by the CORS policy"},
            {
                "field": "Access-Control-Request-Method",
                "description": "is not allowed by the CORS policy",
            },
        ]


async def test_docs_page_and_assets_are_served_locally(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert 'url: "openapi.json"' in page.text and "http" not in page.text.split("<body>")[1]
    script = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    missing = await http.get("/docs/assets/nothing.js")
    assert missing.status_code == 404
    assert missing.json() == {"code": 5, "message": "Not Found", "details": []}
    wrong = await http.post("/openapi.json")
    assert wrong.status_code == 405 and wrong.json()["code"] == 12
    assert "GET" in wrong.headers["Allow"]


async def test_docs_can_be_turned_off(grpc_port: int) -> None:
    async with asgi_client(grpc_port, docs_enabled=False) as client:
        assert (await client.get("/openapi.json")).status_code == 404
        assert (await client.get("/docs")).status_code == 404


async def test_embedded_server_binds_port_zero_and_reports_it(grpc_port: int) -> None:
    settings = GatewaySettings(rest_listen="127.0.0.1:0")
    async with rest_server.running(settings, f"127.0.0.1:{grpc_port}") as port:
        assert port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.get("/api/v1/ai/task/result/t1")
            assert response.status_code == 200 and response.json()["taskId"] == "t1"
            assert "server" not in response.headers


async def test_embedded_server_answers_without_delayed_ack_stalls(grpc_port: int) -> None:
    # A listening socket without IPPROTO_TCP leaves Nagle on and costs ~40 ms per response.
    settings = GatewaySettings(rest_listen="127.0.0.1:0")
    async with (
        rest_server.running(settings, f"127.0.0.1:{grpc_port}") as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        took = []
        for _ in range(30):
            started = time.perf_counter()
            assert (await client.get("/api/v1/nowhere")).status_code == 404
            took.append(time.perf_counter() - started)
    assert statistics.median(took) < 0.02


async def test_embedded_server_is_off_with_an_empty_address(grpc_port: int) -> None:
    async with rest_server.running(GatewaySettings(rest_listen=""), "unused") as port:
        assert port is None


async def test_embedded_server_names_an_address_in_use(grpc_port: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(OSError, match=f"cannot listen on {address}"):
            async with rest_server.running(GatewaySettings(rest_listen=address), "unused"):
                pass


async def test_shutdown_ends_open_streams_with_unavailable(grpc_port: int) -> None:
    settings = GatewaySettings(rest_listen="127.0.0.1:0")
    async with contextlib.AsyncExitStack() as running:
        port = await running.enter_async_context(
            rest_server.running(settings, f"127.0.0.1:{grpc_port}")
        )
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
            client.stream("GET", "/api/v1/ai/task/forever:watch") as response,
        ):
            lines = response.aiter_lines()
            assert json.loads(await anext(lines))["result"]["status"] == "TASK_STATUS_QUEUED"
            stopping = asyncio.create_task(running.aclose())
            rest = [json.loads(line) async for line in lines if line]
            await stopping
    assert rest == [
        {
            "error": {
                "code": grpc.StatusCode.UNAVAILABLE.value[0],
                "message": "the server is shutting down; watch again",
                "details": [],
            }
        }
    ]


async def test_idle_event_streams_get_heartbeats(grpc_port: int) -> None:
    settings = GatewaySettings(rest_listen="127.0.0.1:0", rest_sse_heartbeat_seconds=0.05)
    async with (
        rest_server.running(settings, f"127.0.0.1:{grpc_port}") as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        response = await client.get(
            "/api/v1/ai/task/idle:watch", headers={"Accept": "text/event-stream"}
        )
    parser = SseParser()
    parser.feed(response.text)
    assert [e.event for e in parser.events] == ["result", "result", "end"]
    assert parser.comments >= 1


@pytest.mark.parametrize(
    ("listen", "port", "target"),
    [
        ("127.0.0.1:50051", 50051, "127.0.0.1:50051"),
        ("0.0.0.0:0", 4242, "127.0.0.1:4242"),
        ("[::]:50051", 50051, "[::1]:50051"),
        ("[::1]:1", 7, "[::1]:7"),
        ("gateway.internal:50051", 50051, "gateway.internal:50051"),
    ],
)
def test_loopback_target(listen: str, port: int, target: str) -> None:
    assert rest_server.loopback_target(listen, port) == target


@pytest.mark.parametrize("address", ["8080", "host:", "host:http", "host:70000"])
def test_malformed_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        rest_server.split_address(address)
