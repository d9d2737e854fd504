"""Errors over REST on the real stack: each gRPC code the services use, in grpc-gateway's shape
and HTTP status, and each kind of malformed input as a clear 4xx in the same shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format

from genhub.v1 import task_service_pb2
from tests.support import raw_http, tasks
from tests.support.rest import client, shared_rest_stack
from tests.support.stack import Stack

__all__ = ["shared_rest_stack"]  # a fixture this module uses

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@pytest.fixture(scope="module")
async def http(shared_rest_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the module's REST stack."""
    async with client(shared_rest_stack) as opened:
        yield opened


def _error(response: httpx.Response, status: int, code: grpc.StatusCode) -> dict[str, Any]:
    """The error body, checked for grpc-gateway's shape, status and code."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-Id"]
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code.value[0] and body["message"]
    return body


def _violations(body: dict[str, Any]) -> dict[str, str]:
    return {
        v["field"]: v["description"]
        for detail in body["details"]
        if detail["@type"] == BAD_REQUEST
        for v in detail["fieldViolations"]
    }


def _reason(body: dict[str, Any]) -> str:
    return next(str(d["reason"]) for d in body["details"] if d["@type"] == ERROR_INFO)


async def test_invalid_argument_is_400_naming_each_field_as_grpc_does(
    shared_rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    body = {
        "provider": "demo",
        "model": "demo-image",
        "image": {"prompt": "  ", "size": "7x7", "n": 99},
    }
    response = await http.post("/api/v1/ai/image/task", json=body)
    error = _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    violations = _violations(error)
    assert set(violations) == {"image.prompt", "image.size", "image.n"}

    request = json_format.ParseDict(body, task_service_pb2.CreateImageTaskRequest())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await shared_rest_stack.tasks.CreateImageTask(request)
    assert tasks.violations(raised.value) == violations
    assert error["message"] == raised.value.details()


async def test_unknown_task_is_404_with_error_info(http: httpx.AsyncClient) -> None:
    for path in ("/api/v1/ai/task/result/nope", "/api/v1/ai/tasks/nope"):
        error = _error(await http.get(path), 404, grpc.StatusCode.NOT_FOUND)
        info = next(d for d in error["details"] if d["@type"] == ERROR_INFO)
        assert info["domain"] == "genhub.dev" and info["metadata"] == {"task_id": "nope"}
    _error(await http.delete("/api/v1/ai/task/nope"), 404, grpc.StatusCode.NOT_FOUND)
    _error(await http.post("/api/v1/ai/task/nope:cancel"), 404, grpc.StatusCode.NOT_FOUND)
    _error(await http.get("/api/v1/ai/task/nope:watch"), 404, grpc.StatusCode.NOT_FOUND)


async def test_cancelling_a_finished_task_is_400_failed_precondition(
    shared_rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    created = await http.post(
        "/api/v1/ai/text/task",
        json={"provider": "demo", "model": "demo-text", "text": {"prompt": "hi"}, "wait": "20s"},
    )
    task = created.json()
    assert task["status"] == "TASK_STATUS_SUCCEEDED"
    response = await http.post(f"/api/v1/ai/task/{task['taskId']}:cancel", json={})
    error = _error(response, 400, grpc.StatusCode.FAILED_PRECONDITION)
    assert _reason(error) == "TASK_FINISHED"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"provider": "demo", ', "body"),
        (b"[1, 2, 3]", "body"),
        (b'{"text": {"temperature": NaN}}', "text.temperature"),
        (b"\xff\xfe{}", "body"),
        (b'{"provider": "demo", "bogus": true}', "bogus"),
        (b'{"text": {"prompt": "hi", "colour": "red"}}', "text.colour"),
        (b'{"text": {"maxTokens": "many"}}', "text.maxTokens"),
        (b'{"priority": "PRIORITY_URGENT"}', "priority"),
        (b'{"wait": 5}', "wait"),
    ],
    ids=[
        "malformed-json",
        "not-an-object",
        "nan-token",
        "not-utf8",
        "unknown-field",
        "unknown-nested-field",
        "wrong-type",
        "unknown-enum",
        "wrong-wkt-type",
    ],
)
async def test_malformed_bodies_are_400(
    http: httpx.AsyncClient, content: bytes, field: str | None
) -> None:
    response = await http.post(
        "/api/v1/ai/text/task", content=content, headers={"Content-Type": "application/json"}
    )
    error = _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    assert list(_violations(error)) == [field]


async def test_a_field_given_twice_is_400_and_creates_nothing(
    shared_rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    # Issue 11: this body used to create a task owned by u-b (the last spelling won).
    content = (
        b'{"provider":"demo","model":"demo-text","text":{"prompt":"x"},'
        b'"userId":"u-a","user_id":"u-b"}'
    )
    response = await http.post(
        "/api/v1/ai/text/task", content=content, headers={"Content-Type": "application/json"}
    )
    error = _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    assert _violations(error) == {"user_id": "is the same field as 'userId'; give it once"}
    for user in ("u-a", "u-b"):
        listed = await http.get("/api/v1/ai/tasks", params={"userId": user})
        assert listed.json() == {}  # an empty page: no tasks, no next page
    same_key = content.replace(b'"user_id":"u-b"', b'"userId":"u-b"')
    response = await http.post("/api/v1/ai/text/task", content=same_key)
    assert _violations(_error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)) == {
        "userId": "is given more than once"
    }


async def test_an_enum_number_outside_int32_is_400(http: httpx.AsyncClient) -> None:
    # Issue 11: 4294967299 wrapped to 3 (PRIORITY_CRITICAL) and the task was accepted.
    body = {"provider": "demo", "model": "demo-text", "text": {"prompt": "x"}}
    response = await http.post("/api/v1/ai/text/task", json=body | {"priority": 4294967299})
    error = _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    assert _violations(error) == {"priority": "4294967299 is out of range for an enum (int32)"}
    for bad in (1.5, 99, True, "3"):
        response = await http.post("/api/v1/ai/text/task", json=body | {"priority": bad})
        assert list(_violations(_error(response, 400, grpc.StatusCode.INVALID_ARGUMENT))) == [
            "priority"
        ]
    response = await http.get("/api/v1/ai/tasks", params={"status": "4294967298"})
    assert list(_violations(_error(response, 400, grpc.StatusCode.INVALID_ARGUMENT))) == ["status"]


async def test_a_150_kb_url_and_a_huge_header_block_get_json_errors(
    shared_rest_stack: Stack,
) -> None:
    # Issue 11: uvicorn answered 400 text/plain without a request id, then reset the connection.
    port = int(shared_rest_stack.rest_url.rsplit(":", 1)[1])
    long_url = b"/api/v1/ai/tasks?pageToken=" + b"x" * 150_000
    answer = await raw_http.exchange(port, b"GET " + long_url + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert answer.status == 414 and answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"] and answer.json()["code"] == 8
    assert answer.sent_all and answer.closed_cleanly is not False
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))
    answer = await raw_http.exchange(
        port, b"GET /api/v1/ai/tasks HTTP/1.1\r\nHost: h\r\n" + filler + b"\r\n"
    )
    assert answer.status == 431 and answer.headers["x-request-id"]
    assert answer.json()["details"][0]["fieldViolations"][0]["field"] == "headers"
    assert answer.sent_all and answer.closed_cleanly is not False


async def test_form_bodies_are_415(http: httpx.AsyncClient) -> None:
    # What `curl -d` sends without -H 'Content-Type: application/json'.
    response = await http.post(
        "/api/v1/ai/text/task",
        content=b'{"provider": "demo"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert list(_violations(_error(response, 415, grpc.StatusCode.INVALID_ARGUMENT))) == [
        "Content-Type"
    ]


async def test_wrong_query_type_is_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/ai/tasks", params={"pageSize": "lots"})
    error = _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    assert list(_violations(error)) == ["pageSize"]


async def test_oversized_body_is_413(http: httpx.AsyncClient) -> None:
    prompt = "x" * (8 * 1024 * 1024)
    response = await http.post("/api/v1/ai/text/task", json={"text": {"prompt": prompt}})
    error = _error(response, 413, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "8388608" in error["message"]


async def test_unknown_route_is_404(http: httpx.AsyncClient) -> None:
    for path in ("/api/v1/nothing", "/api/v1/ai/tasks/a/b", "/api/v1/ai/task/result/"):
        _error(await http.get(path), 404, grpc.StatusCode.NOT_FOUND)


async def test_wrong_method_is_405_with_allow(http: httpx.AsyncClient) -> None:
    response = await http.delete("/api/v1/ai/tasks")
    _error(response, 405, grpc.StatusCode.UNIMPLEMENTED)
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    response = await http.get("/api/v1/ai/task/t1")
    _error(response, 405, grpc.StatusCode.UNIMPLEMENTED)
    assert response.headers["Allow"] == "DELETE, OPTIONS"
    response = await http.put("/api/v1/ai/text/task", json={})
    assert response.headers["Allow"] == "OPTIONS, POST"


async def test_bad_path_escape_and_bad_metadata_are_400(http: httpx.AsyncClient) -> None:
    _error(await http.get("/api/v1/ai/task/result/%ff"), 400, grpc.StatusCode.INVALID_ARGUMENT)
    _error(await http.get("/api/v1/ai/task/result/%zz"), 400, grpc.StatusCode.INVALID_ARGUMENT)
    response = await http.get(
        "/api/v1/ai/task/result/t1", headers={"Grpc-Metadata-Grpc-Timeout": "1S"}
    )
    _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)


LONG_ID = "a" * 4000


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", f"/api/v1/ai/tasks/{LONG_ID}", "task_id"),
        ("GET", f"/api/v1/ai/task/result/{LONG_ID}", "task_id"),
        ("DELETE", f"/api/v1/ai/task/{LONG_ID}", "task_id"),
        ("POST", f"/api/v1/ai/task/{LONG_ID}:cancel", "task_id"),
        ("POST", f"/api/v1/ai/task/{LONG_ID}:retry", "task_id"),
        ("GET", f"/api/v1/images/{LONG_ID}", "task_id"),
        ("DELETE", f"/api/v1/images/{LONG_ID}", "task_id"),
        ("GET", f"/api/v1/providers/{'p' * 5000}", "name"),
        ("GET", f"/api/v1/providers/{'p' * 5000}/config", "provider"),
    ],
)
async def test_an_overlong_id_is_400_naming_it_not_a_retryable_error(
    http: httpx.AsyncClient, method: str, path: str, field: str
) -> None:
    # Echoed into a store NOT_FOUND, a 4,000-character id outgrew gRPC's metadata limit and
    # reached clients as 503/429 "Stream removed": an answer that says "retry".
    body: dict[str, str] | None = {} if method == "POST" else None
    response = await http.request(method, path, json=body)
    error = _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    assert list(_violations(error)) == [field]
    assert len(response.content) < 2000  # the id is not echoed back whole


async def test_too_many_reference_images_are_refused_as_a_list_without_fetching_any(
    http: httpx.AsyncClient,
) -> None:
    # 100 URLs used to be resolved one by one (15-20 s) and the 100 violations overflowed the
    # gRPC metadata (429); the list is judged as a whole, at once.
    urls = [f"https://example.invalid/{n}.png" for n in range(100)]
    response = await http.post(
        "/api/v1/ai/image/task",
        json={
            "provider": "demo",
            "model": "demo-image",
            "image": {"prompt": "x", "referenceImages": urls},
        },
        timeout=5,
    )
    error = _error(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    assert _violations(error) == {"image.reference_images": "at most 10 images"}
