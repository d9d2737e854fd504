"""The live OpenAPI document validates, and a bounded, deterministic schemathesis run against the
live REST server finds no server error and no response that breaks the document."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from openapi_spec_validator import validate
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from genhub.gateway import app as gateway_app
from genhub.gateway.rest.bindings import load_bindings
from genhub.gateway.rest.openapi import build_document
from tests.support.rest import http, rest_stack
from tests.support.stack import Stack

__all__ = ["http", "rest_stack"]  # fixtures this module uses

MAX_EXAMPLES = 50
SCHEMA_CHECKS = [
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
    response_headers_conformance,
]


async def test_live_document_validates_and_is_the_generated_one(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document == build_document(load_bindings())
    page = await http.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text


def _fuzz(document: dict[str, Any], base_url: str) -> list[str]:
    """Run every operation with up to MAX_EXAMPLES generated cases; one line per failure.

    A 5xx is a failure, except 501 from a service the gRPC server does not implement yet.
    """
    schema = schemathesis.openapi.from_dict(document)
    tags = {name.rsplit(".", 1)[-1] for name in gateway_app.SERVICE_NAMES}
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            implemented = set(operation.definition.raw.get("tags", [])) <= tags
            run = _runner(operation, base_url, session, allowed=set() if implemented else {501})
            if failure := _first_failure(run):
                failures.append(f"{operation.label}: {failure}")
    return failures


def _runner(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    base_url: str,
    session: requests.Session,
    allowed: set[int],
) -> Callable[[], None]:
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,  # the same cases on every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy())
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, session=session, timeout=30)
        case.validate_response(response, checks=SCHEMA_CHECKS)
        status = response.status_code
        assert status < 500 or status in allowed, f"{status}: {response.text[:300]}"

    return run


def _first_failure(run: Callable[[], None]) -> str:
    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is the latter
        return "".join(traceback.format_exception_only(exc)).strip()
    return ""


def _known_good(document: dict[str, Any], base_url: str) -> None:
    """Valid requests through every task operation, each response checked against the
    document (generated cases rarely get past validation, so 2xx bodies are checked here)."""
    schema = schemathesis.openapi.from_dict(document)

    def call(method: str, path: str, status: int, **data: Any) -> Any:
        case = schema[path][method].Case(**data)
        response = case.call(base_url=base_url, timeout=30)
        case.validate_response(response, checks=SCHEMA_CHECKS)
        assert response.status_code == status, response.text
        return response

    demo = {"provider": "demo", "wait": "20s", "labels": {"suite": "openapi"}}
    specs = {
        "image": {"model": "demo-image", "image": {"prompt": "fox", "size": "256x256", "n": 2}},
        "video": {"model": "demo-video", "video": {"prompt": "sea", "durationSeconds": 2}},
        "text": {"model": "demo-text", "text": {"messages": [{"role": "user", "content": "hi"}]}},
    }
    ids = [
        call("POST", f"/api/v1/ai/{kind}/task", 202, body=demo | spec).json()["taskId"]
        for kind, spec in specs.items()
    ]
    for task_id in ids:
        by_id = {"task_id": task_id}
        call("GET", "/api/v1/ai/task/result/{task_id}", 200, path_parameters=by_id)
        call("GET", "/api/v1/ai/tasks/{task_id}", 200, path_parameters=by_id)
        call("GET", "/api/v1/ai/task/{task_id}:watch", 200, path_parameters=by_id)
        call("POST", "/api/v1/ai/task/{task_id}:cancel", 400, path_parameters=by_id, body={})
    call("GET", "/api/v1/ai/tasks", 200, query={"pageSize": 2, "status": "TASK_STATUS_SUCCEEDED"})
    call("DELETE", "/api/v1/ai/task/{task_id}", 200, path_parameters={"task_id": ids[0]})


async def test_valid_requests_get_responses_that_match_the_document(
    rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    document = (await http.get("/openapi.json")).json()
    await asyncio.to_thread(_known_good, document, rest_stack.rest_url)


async def test_schemathesis_finds_no_server_error_or_schema_violation(
    rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    document = (await http.get("/openapi.json")).json()
    # schemathesis is synchronous (requests); the server runs on this loop, so fuzz elsewhere.
    failures = await asyncio.to_thread(_fuzz, document, rest_stack.rest_url)
    assert failures == []
