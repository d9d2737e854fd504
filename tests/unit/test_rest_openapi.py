"""The generated OpenAPI document: valid OpenAPI 3, one operation per HTTP binding, schemas
in proto3 JSON terms, grpc-gateway's error shape, 202 for task creation."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from genhub.gateway.rest.bindings import load_bindings
from genhub.gateway.rest.openapi import build_document

BINDINGS = load_bindings()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document for the public API."""
    return build_document(BINDINGS)


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: op | {"_path": path, "_verb": verb}
        for path, item in document["paths"].items()
        for verb, op in item.items()
    }


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.0")


def test_one_operation_per_binding(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert set(operations) == {b.operation_id for b in BINDINGS}
    for binding in BINDINGS:
        operation = operations[binding.operation_id]
        assert operation["_verb"] == binding.http_method.lower()
        assert operation["tags"] == [binding.method.containing_service.name]


def test_paths_keep_verbs_and_merge_renamed_variables(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths["/api/v1/ai/task/{task_id}:cancel"]) == {"post"}
    assert set(paths["/api/v1/users:findByEmail"]) == {"get"}
    # /users/{user_id} and /users/{user.user_id} are one OpenAPI path.
    assert set(paths["/api/v1/users/{user_id}"]) == {"get", "patch", "delete"}
    patch = paths["/api/v1/users/{user_id}"]["patch"]
    assert patch["parameters"][0]["description"] == "Sets the request field `user.user_id`."
    assert set(paths["/api/v1/providers/{provider}/models/{model}"]) == {"put", "delete"}
    assert set(paths["/api/v1/providers/{provider}/config"]) == {"get", "put", "delete"}


def test_query_parameters_use_json_names_and_enum_schemas(document: dict[str, Any]) -> None:
    operation = _operations(document)["TaskService_ListTasks"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"userId", "type", "status", "pageSize", "pageToken", "view"}
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    assert parameters["status"]["schema"] == {"$ref": "#/components/schemas/genhub.v1.TaskStatus"}
    assert "TASK_STATUS_QUEUED" in _schema(document, "genhub.v1.TaskStatus")["enum"]
    assert "TASK_VIEW_FULL" in _schema(document, "genhub.v1.TaskView")["enum"]
    update = _operations(document)["UserService_UpdateUser"]
    assert {p["name"] for p in update["parameters"] if p["in"] == "query"} == {"updateMask"}


def test_creates_answer_202_with_location_and_link(document: dict[str, Any]) -> None:
    operations = _operations(document)
    for binding in BINDINGS:
        responses = operations[binding.operation_id]["responses"]
        if binding.creates_task:
            assert set(responses) == {"202", "default"}
            headers = responses["202"]["headers"]
            assert headers["Location"]["required"] and headers["Link"]["required"]
            body = operations[binding.operation_id]["requestBody"]["content"]["application/json"]
            assert body["schema"]["$ref"].endswith(binding.method.input_type.full_name)
        else:
            assert "200" in responses
        assert responses["default"] == {"$ref": "#/components/responses/Error"}
    creates = {b.method.name for b in BINDINGS if b.creates_task}
    assert creates == {"CreateImageTask", "CreateVideoTask", "CreateTextTask"}


def test_message_schemas_follow_proto3_json(document: dict[str, Any]) -> None:
    task = _schema(document, "genhub.v1.Task")
    props = task["properties"]
    assert "taskId" in props and "task_id" not in props
    assert props["createTime"] == {"type": "string", "format": "date-time", "readOnly": True}
    assert props["status"]["readOnly"] is True
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert task["additionalProperties"] is False
    usage = _schema(document, "genhub.v1.Usage")["properties"]
    assert usage["totalTokens"]["type"] == "string" and usage["totalTokens"]["format"] == "int64"
    request = _schema(document, "genhub.v1.CreateImageTaskRequest")
    assert request["required"] == ["provider", "model", "image"]
    assert request["properties"]["wait"]["type"] == "string"


def test_error_schema_is_grpc_gateway_status(document: dict[str, Any]) -> None:
    status = _schema(document, "google.rpc.Status")
    assert set(status["properties"]) == {"code", "message", "details"}
    assert status["properties"]["details"]["items"] == {
        "$ref": "#/components/schemas/google.protobuf.Any"
    }
    error = document["components"]["responses"]["Error"]
    assert error["content"]["application/json"]["schema"]["$ref"].endswith("google.rpc.Status")


def test_watch_documents_ndjson_and_sse(document: dict[str, Any]) -> None:
    ok = _operations(document)["TaskService_WatchTask"]["responses"]["200"]
    assert set(ok["content"]) == {"application/x-ndjson", "text/event-stream"}
    chunk = ok["content"]["application/x-ndjson"]["schema"]
    assert set(chunk["properties"]) == {"result", "error"}


def test_body_star_with_a_path_variable_leaves_it_out_of_the_body(
    document: dict[str, Any],
) -> None:
    cancel = _operations(document)["TaskService_CancelTask"]
    schema = cancel["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"] == {}
    assert cancel["requestBody"]["required"] is False
