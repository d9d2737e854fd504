"""The live OpenAPI document validates, and a bounded, seeded schemathesis run against the live
REST server (every operation, MAX_EXAMPLES valid and MAX_EXAMPLES invalid requests each) finds no
server error, no response that breaks the document, and no invalid request that is accepted."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from openapi_spec_validator import validate

from genhub.gateway import app as gateway_app
from genhub.gateway.rest.bindings import load_bindings
from genhub.gateway.rest.openapi import build_document
from tests.support.fuzz import SCHEMA_CHECKS, run_modes
from tests.support.rest import http, rest_stack
from tests.support.stack import Stack

__all__ = ["http", "rest_stack"]  # fixtures this module uses

MAX_EXAMPLES = 200
SEED = 20261130


async def test_live_document_validates_and_is_the_generated_one(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document == build_document(load_bindings())
    page = await http.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text


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


# About 200 CPU-seconds: 60 in the server, 135 generating 8,400 cases in the two worker
# processes; about 100 s on 2 idle cores, several minutes on a loaded machine.
@pytest.mark.timeout(900)
async def test_schemathesis_finds_no_server_error_or_schema_violation(
    rest_stack: Stack, http: httpx.AsyncClient
) -> None:
    document = (await http.get("/openapi.json")).json()
    tags = [name.rsplit(".", 1)[-1] for name in gateway_app.SERVICE_NAMES]
    positive, negative = await run_modes(
        document, rest_stack.rest_url, max_examples=MAX_EXAMPLES, seed=SEED, implemented_tags=tags
    )
    assert positive.failures + negative.failures == []
    # Every operation gets MAX_EXAMPLES valid requests (fewer only when it has no input to
    # vary), and every one with a body or query parameters MAX_EXAMPLES invalid ones.
    methods = {"get", "put", "post", "delete", "patch"}
    paths = build_document(load_bindings())["paths"].values()
    assert len(positive.cases) == sum(len(methods & set(item)) for item in paths)
    assert all(n >= MAX_EXAMPLES or n == 1 for n in positive.cases.values()), positive.cases
    assert len(negative.cases) >= 15, negative.cases
    assert min(negative.cases.values()) >= MAX_EXAMPLES, negative.cases
