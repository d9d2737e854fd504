"""Transcoding rules without a server: body, path and query into the request message; the
response into proto3 JSON; headers into metadata; gRPC codes into HTTP statuses."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from starlette.datastructures import Headers

from genhub.gateway.rest import headers as rest_headers
from genhub.gateway.rest.bindings import Binding, load_bindings
from genhub.gateway.rest.errors import RestError, http_status, status_body
from genhub.gateway.rest.paths import PathTemplate
from genhub.gateway.rest.transcode import build_request, render
from genhub.v1 import task_pb2, task_service_pb2

BINDINGS = {b.operation_id: b for b in load_bindings()}


def _binding(request: type[Message], template: str = "/x", body: str = "") -> Binding:
    """A binding over an arbitrary request message, to exercise field kinds the API's own
    request messages do not have (repeated scalars in the query, maps, bools)."""
    method = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].methods_by_name["GetTask"]
    return Binding(
        method=method,
        http_method="GET",
        template=PathTemplate.parse(template),
        body=body,
        response_body="",
        index=0,
        request_class=request,
        response_class=message_factory.GetMessageClass(method.output_type),
    )


def _bad_request(exc: RestError) -> dict[str, str]:
    found: dict[str, str] = {}
    for detail in exc.status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def _raises(
    binding: Binding, path: dict[str, str], query: list[tuple[str, str]], body: bytes
) -> RestError:
    with pytest.raises(RestError) as raised:
        build_request(binding, path, query, body)
    assert raised.value.http_status == 400
    assert raised.value.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    return raised.value


def test_body_star_accepts_camel_and_snake_case() -> None:
    binding = BINDINGS["TaskService_CreateTextTask"]
    body = {
        "provider": "demo",
        "model": "demo-text",
        "user_id": "u",
        "idempotencyKey": "k",
        "text": {"prompt": "hi", "max_tokens": 5, "temperature": 0.5},
        "priority": "PRIORITY_CRITICAL",
        "labels": {"a": "b"},
        "wait": "1.5s",
    }
    request = build_request(binding, {}, [], json.dumps(body).encode())
    assert isinstance(request, task_service_pb2.CreateTextTaskRequest)
    assert request.user_id == "u" and request.idempotency_key == "k"
    assert request.text.max_tokens == 5 and request.text.temperature == 0.5
    assert request.priority == task_pb2.PRIORITY_CRITICAL
    assert dict(request.labels) == {"a": "b"}
    assert request.wait.seconds == 1 and request.wait.nanos == 500_000_000


def test_enum_by_number_and_int64_as_string_or_number() -> None:
    binding = BINDINGS["TaskService_CreateImageTask"]
    body = {"priority": 1, "image": {"seed": "12345678901234", "responseFormat": 2}}
    request = build_request(binding, {}, [], json.dumps(body).encode())
    assert isinstance(request, task_service_pb2.CreateImageTaskRequest)
    assert request.priority == task_pb2.PRIORITY_LOW
    assert request.image.seed == 12345678901234
    assert request.image.response_format == task_pb2.IMAGE_RESPONSE_FORMAT_B64_JSON


def test_path_variable_overrides_the_body() -> None:
    binding = BINDINGS["TaskService_CancelTask"]
    request = build_request(binding, {"task_id": "from-path"}, [], b'{"taskId": "from-body"}')
    assert isinstance(request, task_service_pb2.CancelTaskRequest)
    assert request.task_id == "from-path"


def test_a_zero_path_value_still_overrides_the_body() -> None:
    binding = _binding(task_pb2.Task, "/x/{attempts}", body="*")
    request: Any = build_request(binding, {"attempts": "0"}, [], b'{"attempts": 5}')
    assert request.attempts == 0


def test_empty_body_is_an_empty_message() -> None:
    binding = BINDINGS["TaskService_CancelTask"]
    request = build_request(binding, {"task_id": "t"}, [], b"")
    assert request == task_service_pb2.CancelTaskRequest(task_id="t")


def test_named_body_field_with_a_nested_path_variable() -> None:
    binding = BINDINGS["ProviderService_UpsertModel"]
    body = b'{"model": "ignored", "type": "TASK_TYPE_TEXT", "maxTokens": 10}'
    request: Any = build_request(binding, {"provider": "demo", "model.model": "m1"}, [], body)
    assert request.provider == "demo"
    assert request.model.model == "m1"  # the path wins over the body
    assert request.model.type == task_pb2.TASK_TYPE_TEXT and request.model.max_tokens == 10


def test_query_parameters_fill_the_remaining_fields() -> None:
    binding = BINDINGS["TaskService_ListTasks"]
    query = [
        ("userId", "u"),
        ("type", "TASK_TYPE_IMAGE"),
        ("status", "3"),
        ("page_size", "7"),
        ("pageToken", "abc"),
    ]
    request = build_request(binding, {}, query, b"")
    assert request == task_service_pb2.ListTasksRequest(
        user_id="u",
        type=task_pb2.TASK_TYPE_IMAGE,
        status=task_pb2.TASK_STATUS_RUNNING,
        page_size=7,
        page_token="abc",
    )


def test_query_nested_repeated_map_and_bool() -> None:
    binding = _binding(task_pb2.Task)
    query = [
        ("image.referenceImages", "https://a.example/1.png"),
        ("image.reference_images", "https://a.example/2.png"),
        ("image.seed", "-5"),
        ("image.guidanceScale", "7.5"),
        ("labels[team]", "core"),
        ("error.retryable", "true"),
        ("createTime", "2026-01-02T03:04:05.5Z"),
    ]
    request: Any = build_request(binding, {}, query, b"")
    assert list(request.image.reference_images) == [
        "https://a.example/1.png",
        "https://a.example/2.png",
    ]
    assert request.image.seed == -5 and request.image.guidance_scale == 7.5
    assert dict(request.labels) == {"team": "core"}
    assert request.error.retryable is True
    assert request.create_time.seconds == 1767323045 and request.create_time.nanos == 500_000_000


def test_query_params_bound_by_the_path_or_body_are_refused() -> None:
    error = _raises(BINDINGS["TaskService_GetTask"], {"task_id": "p"}, [("taskId", "q")], b"")
    assert _bad_request(error) == {"taskId": "is already set by the URL path"}
    update = BINDINGS["UserService_UpdateUser"]
    error = _raises(update, {"user.user_id": "u"}, [("user.displayName", "q")], b"{}")
    assert _bad_request(error) == {"user.displayName": "is already set by the request body"}


def test_body_star_routes_take_no_query_parameters() -> None:
    binding = BINDINGS["TaskService_CreateTextTask"]
    error = _raises(binding, {}, [("provider", "q")], b'{"provider": "b"}')
    assert list(_bad_request(error)) == ["provider"]


def test_unknown_query_parameters_are_refused() -> None:
    # A typo (page_sise) silently ignored would list 50 tasks where the client asked for 5.
    error = _raises(BINDINGS["TaskService_ListTasks"], {}, [("page_sise", "5")], b"")
    assert _bad_request(error) == {"page_sise": "is not a field of this request"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"bogus": 1}', "bogus"),
        (b'{"text": {"bogus": 1}}', "text.bogus"),
        (b'{"text": {"maxTokens": "many"}}', "text.maxTokens"),
        (b'{"text": {"max_tokens": 1.5}}', "text.max_tokens"),
        (b'{"priority": "PRIORITY_URGENT"}', "priority"),
        (b'{"wait": "soon"}', "wait"),
        (b'{"labels": ["a"]}', "labels"),
        (b'{"text": {"prompt": 5}}', "text.prompt"),
        (b'{"text": {"messages": [{"role": "user", "extra": true}]}}', "text.messages[0].extra"),
    ],
)
def test_bad_body_fields_are_named(body: bytes, field: str) -> None:
    error = _raises(BINDINGS["TaskService_CreateTextTask"], {}, [], body)
    assert list(_bad_request(error)) == [field]
    assert field in error.status.message


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"text": {"temperature": NaN}}', b"[" * 5000],
)
def test_bodies_that_are_not_a_json_object(body: bytes) -> None:
    error = _raises(BINDINGS["TaskService_CreateTextTask"], {}, [], body)
    assert list(_bad_request(error)) == ["text.temperature" if b"NaN" in body else "body"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ([("pageSize", "abc")], "pageSize"),
        ([("pageSize", "99999999999")], "pageSize"),
        ([("status", "TASK_STATUS_NOPE")], "status"),
        ([("userId", "a"), ("user_id", "b")], "user_id"),
    ],
)
def test_bad_query_parameters_are_named(query: list[tuple[str, str]], field: str) -> None:
    error = _raises(BINDINGS["TaskService_ListTasks"], {}, query, b"")
    assert list(_bad_request(error)) == [field]


def test_bad_query_bool_and_message_parameters() -> None:
    binding = _binding(task_pb2.Task)
    assert list(_bad_request(_raises(binding, {}, [("error.retryable", "maybe")], b""))) == [
        "error.retryable"
    ]
    assert list(_bad_request(_raises(binding, {}, [("image", "x")], b""))) == ["image"]
    assert list(_bad_request(_raises(binding, {}, [("labels", "x")], b""))) == ["labels"]
    text = _binding(task_pb2.TextSpec)
    assert list(_bad_request(_raises(text, {}, [("messages", "x")], b""))) == ["messages"]


def test_render_uses_proto3_json() -> None:
    task = task_pb2.Task(
        task_id="t1",
        status=task_pb2.TASK_STATUS_SUCCEEDED,
        usage=task_pb2.Usage(total_tokens=12),
    )
    task.create_time.FromSeconds(1767323045)
    payload = render(BINDINGS["TaskService_GetTask"], task_service_pb2.GetTaskResponse(task=task))
    assert payload["taskId"] == "t1" and payload["status"] == "TASK_STATUS_SUCCEEDED"
    assert payload["usage"]["totalTokens"] == "12"  # int64 as a string
    assert payload["createTime"] == "2026-01-02T03:04:05Z"
    # Fields at their default are left out, as the mapping prints by default; a proto3 JSON
    # parser reads the answer back as the same message.
    assert "attempts" not in payload and "labels" not in payload and "error" not in payload
    assert json_format.ParseDict(payload, task_pb2.Task()) == task
    whole = render(BINDINGS["TaskService_ListTasks"], task_service_pb2.ListTasksResponse())
    assert whole == {}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.OUT_OF_RANGE, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.CANCELLED, 499),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNKNOWN, 500),
        (grpc.StatusCode.DATA_LOSS, 500),
    ],
)
def test_grpc_gateway_status_mapping(code: grpc.StatusCode, status: int) -> None:
    assert http_status(code) == status


def test_status_body_decodes_details_and_passes_unknown_ones_through() -> None:
    status = status_pb2.Status(code=3, message="bad")
    status.details.add().Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="f", description="d")
            ]
        )
    )
    status.details.add(type_url="type.googleapis.com/unknown.Thing", value=b"\x08\x01")
    body = status_body(status)
    assert body["code"] == 3 and body["message"] == "bad"
    assert body["details"][0] == {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "f", "description": "d"}],
    }
    assert body["details"][1] == {"@type": "type.googleapis.com/unknown.Thing", "value": "CAE="}


def _headers(**values: str) -> Headers:
    return Headers(raw=[(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()])


def test_headers_become_metadata() -> None:
    incoming = _headers(
        authorization="Bearer t",
        idempotency_key="k1",
        x_request_id="ignored-here",
        grpc_metadata_tenant="acme",
        grpc_metadata_trace_bin="AQI",
        accept="application/json",
        host="api.example",
    )
    metadata = rest_headers.outgoing_metadata(incoming, "rid-1", "10.0.0.9")
    assert metadata == [
        ("x-request-id", "rid-1"),
        ("authorization", "Bearer t"),
        ("idempotency-key", "k1"),
        ("tenant", "acme"),
        ("trace-bin", b"\x01\x02"),
        ("x-forwarded-for", "10.0.0.9"),
        ("x-forwarded-host", "api.example"),
    ]


@pytest.mark.parametrize(
    "name", ["grpc-metadata-grpc-timeout", "grpc-metadata-content-type", "grpc-metadata-a b"]
)
def test_reserved_or_invalid_metadata_is_refused(name: str) -> None:
    with pytest.raises(RestError) as raised:
        rest_headers.outgoing_metadata(Headers(raw=[(name.encode(), b"x")]), "r", None)
    assert raised.value.http_status == 400


def test_grpc_timeout_header() -> None:
    assert rest_headers.timeout_seconds(_headers(grpc_timeout="250m")) == pytest.approx(0.25)
    assert rest_headers.timeout_seconds(_headers(grpc_timeout="2S")) == 2.0
    assert rest_headers.timeout_seconds(_headers()) is None
    with pytest.raises(RestError):
        rest_headers.timeout_seconds(_headers(grpc_timeout="soon"))


@pytest.mark.parametrize(
    "value", ["24H", "1441M", "9999999H", "2562047H", "99999999H", "99999999S"]
)
def test_grpc_timeouts_beyond_the_maximum_are_capped(value: str) -> None:
    # Eight digits of hours overflow grpc's deadline arithmetic (a call failing at once with
    # DEADLINE_EXCEEDED); such values mean "no hurry" and get the maximum.
    seconds = rest_headers.timeout_seconds(_headers(grpc_timeout=value))
    assert seconds == rest_headers.MAX_TIMEOUT_SECONDS == 24 * 3600
    assert rest_headers.timeout_seconds(_headers(grpc_timeout="1439M")) == 1439 * 60


@pytest.mark.parametrize("value", ["!!!", "AQI*", "A", "AQ=I", "AQI===", "====", "-_8=", "AQ I"])
def test_bin_metadata_that_is_not_base64_is_refused(value: str) -> None:
    # b64decode alone drops characters outside the alphabet: "!!!" would travel as b"".
    with pytest.raises(RestError) as raised:
        rest_headers.outgoing_metadata(_headers(grpc_metadata_foo_bin=value), "r", None)
    assert raised.value.http_status == 400
    assert list(_bad_request(raised.value)) == ["grpc-metadata-foo-bin"]
    assert "is not base64" in raised.value.status.message


@pytest.mark.parametrize(
    ("value", "decoded"),
    [("", b""), ("AQI", b"\x01\x02"), ("AQI=", b"\x01\x02"), ("+/8=", b"\xfb\xff")],
)
def test_bin_metadata_is_base64_padded_or_not(value: str, decoded: bytes) -> None:
    metadata = rest_headers.outgoing_metadata(_headers(grpc_metadata_foo_bin=value), "r", None)
    assert metadata[-1] == ("foo-bin", decoded)


def test_a_huge_integer_literal_is_out_of_range_naming_the_field() -> None:
    # 5000 digits: more than Python converts (4300). Refused as any out-of-range number is,
    # not as invalid JSON naming the body with Python's own advice.
    body = b'{"text": {"maxTokens": 1%s}}' % (b"0" * 4999)
    error = _raises(BINDINGS["TaskService_CreateTextTask"], {}, [], body)
    assert _bad_request(error) == {
        "text.maxTokens": "100000000000… (5000 digits) is out of range (-2147483648 to 2147483647)"
    }
    assert "set_int_max_str_digits" not in error.status.message


def test_usable_request_ids() -> None:
    assert rest_headers.usable_request_id("abc-123")
    assert not rest_headers.usable_request_id("")
    assert not rest_headers.usable_request_id("a b")
    assert not rest_headers.usable_request_id("x" * 129)
