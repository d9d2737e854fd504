"""Properties of the transcoder, checked with hypothesis over GenHub's request messages and a
message with every field kind:

* any body the REST layer accepts gives exactly the message protobuf's own strict JSON parser
  (``json_format.Parse``, unknown fields refused) gives for it;
* any body it refuses is a 400 INVALID_ARGUMENT whose BadRequest names at least one field:
  never another exception (a 500);
* the canonical proto3 JSON of any message (either name style) is accepted and gives that
  message back, and so does the same message sent as query parameters: strictness never refuses
  what proto3 JSON allows.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from genhub.gateway.rest import fields
from genhub.gateway.rest.bindings import Binding, load_bindings
from genhub.gateway.rest.errors import RestError
from genhub.gateway.rest.paths import PathTemplate
from genhub.gateway.rest.transcode import build_request
from genhub.v1 import task_service_pb2
from tests.support.all_types import AllTypes
from tests.support.proto_strategies import bodies, valid_json

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: a failure reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_GET_TASK = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].methods_by_name["GetTask"]


def _all_types(body: str) -> Binding:
    return Binding(
        method=_GET_TASK,
        http_method="POST" if body else "GET",
        template=PathTemplate.parse("/all"),
        body=body,
        response_body="",
        index=0,
        request_class=AllTypes,
        response_class=message_factory.GetMessageClass(_GET_TASK.output_type),
    )


BODY_BINDINGS = [b for b in load_bindings() if b.body] + [_all_types("*")]
QUERY_BINDINGS = [b for b in load_bindings() if not b.body and not b.template.variables] + [
    _all_types("")
]


def _target(binding: Binding) -> tuple[Descriptor, str]:
    """The message the body is the JSON of, and the field it fills ("" for the whole)."""
    request = fields.descriptor_of(binding.request_class())
    if binding.body == "*":
        return request, ""
    return fields.message_of(request.fields_by_name[binding.body]), binding.body


def _assert_refusal(error: RestError) -> None:
    assert error.http_status == 400
    assert error.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    named: list[str] = []
    for detail in error.status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            named += [v.field for v in bad.field_violations if v.description]
    assert named, error.status
    json.dumps(error.status.message, ensure_ascii=False).encode("utf-8")


@st.composite
def _body_case(draw: st.DrawFn) -> tuple[Binding, bytes]:
    binding = draw(st.sampled_from(BODY_BINDINGS))
    descriptor, _ = _target(binding)
    return binding, draw(bodies(descriptor))


@PROPERTY
@given(case=_body_case())
def test_accepted_bodies_match_json_format_and_refusals_name_a_field(
    case: tuple[Binding, bytes],
) -> None:
    binding, raw = case
    descriptor, body_field = _target(binding)
    try:
        request = build_request(binding, {}, [], raw)
    except RestError as exc:
        _assert_refusal(exc)
        return
    if not raw.strip():
        return  # no body: an empty message
    reference = message_factory.GetMessageClass(descriptor)()
    json_format.Parse(raw, reference, ignore_unknown_fields=False)  # must accept it too
    got = getattr(request, body_field) if body_field else request
    assert got == reference


@st.composite
def _valid_message(draw: st.DrawFn, bindings: list[Binding]) -> tuple[Binding, Message]:
    binding = draw(st.sampled_from(bindings))
    descriptor, _ = (
        _target(binding) if binding.body else (fields.descriptor_of(binding.request_class()), "")
    )
    data = draw(valid_json(descriptor))
    message = message_factory.GetMessageClass(descriptor)()
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError:
        assume(False)
    return binding, message


@PROPERTY
@given(case=_valid_message(BODY_BINDINGS), proto_names=st.booleans())
def test_canonical_json_of_any_message_is_accepted(
    case: tuple[Binding, Message], proto_names: bool
) -> None:
    binding, message = case
    _, body_field = _target(binding)
    text = json_format.MessageToJson(message, preserving_proto_field_name=proto_names)
    request = build_request(binding, {}, [], text.encode())
    assert (getattr(request, body_field) if body_field else request) == message


# Fields a query parameter cannot set: messages other than wrappers and string-form types,
# repeated messages, maps of messages, NullValue.
def _query_settable(message: Message) -> Message:
    for field in fields.descriptor_of(message).fields:
        value = getattr(message, field.name)
        if fields.is_map(field):
            if not fields.is_scalar_like(fields.message_of(field).fields_by_name["value"]):
                message.ClearField(field.name)
        elif (
            field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue"
        ):
            message.ClearField(field.name)
        elif field.message_type is not None and not fields.is_scalar_like(field):
            if fields.is_repeated(field) or field.message_type.full_name.startswith("google."):
                message.ClearField(field.name)
            elif message.HasField(field.name):
                _query_settable(value)
                if value.ByteSize() == 0:
                    message.ClearField(field.name)  # an empty message has no query form
    return message


def _params(value: Any, prefix: str, descriptor: Descriptor) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for key, item in value.items():
        field = descriptor.fields_by_name.get(key) or next(
            f for f in descriptor.fields if f.json_name == key
        )
        name = f"{prefix}{key}"
        if fields.is_map(field):
            params += [(f"{name}[{k}]", _text(v)) for k, v in item.items()]
        elif isinstance(item, list):
            params += [(name, _text(v)) for v in item]
        elif isinstance(item, dict):
            params += _params(item, name + ".", fields.message_of(field))
        else:
            params.append((name, _text(item)))
    return params


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@PROPERTY
@given(case=_valid_message(QUERY_BINDINGS), proto_names=st.booleans())
def test_any_message_sent_as_query_parameters_comes_back(
    case: tuple[Binding, Message], proto_names: bool
) -> None:
    binding, message = case
    message = _query_settable(message)
    printed = json_format.MessageToDict(message, preserving_proto_field_name=proto_names)
    params = _params(printed, "", fields.descriptor_of(message))
    assert build_request(binding, {}, params, b"") == message


_KEYS = st.one_of(
    st.sampled_from(
        [
            "optionalInt32",
            "optional_int32",
            "optionalColor",
            "repeatedInt32",
            "child.optionalBool",
            "mapStringString[k]",
            "mapInt32String[1]",
            "mapBoolBool[true]",
            "optionalDuration",
            "optionalTimestamp",
            "optionalFieldMask",
            "optionalDouble",
            "oneofString",
            "oneofUint32",
            "children.optionalInt32",
            "optionalStruct",
            "pageSize",
            "status",
            "type",
            "userId",
            "user_id",
            "query",
            "email",
            "page_token",
            "bogus",
            "x[y]",
            "a..b",
            "",
        ]
    ),
    st.text(max_size=6),
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            "1",
            "-1",
            "2147483648",
            "1e3",
            "1.0",
            "NaN",
            "true",
            "t",
            "yes",
            "COLOR_RED",
            "3",
            "TASK_STATUS_QUEUED",
            "99",
            "1.5s",
            "1",
            "2026-01-02T03:04:05Z",
            "a,b",
            "a_b",
            "",
            " 5",
        ]
    ),
    st.text(max_size=6),
)


@PROPERTY
@given(
    binding=st.sampled_from(QUERY_BINDINGS),
    params=st.lists(st.tuples(_KEYS, _VALUES), max_size=5),
)
def test_any_query_is_decoded_or_refused_with_a_violation(
    binding: Binding, params: list[tuple[str, str]]
) -> None:
    try:
        build_request(binding, {}, params, b"")
    except RestError as exc:
        _assert_refusal(exc)


@pytest.mark.parametrize("binding", BODY_BINDINGS, ids=lambda b: b.operation_id)
def test_the_issue_examples_are_refused_on_every_body_route(binding: Binding) -> None:
    descriptor, _ = _target(binding)
    by_json = {f.json_name: f for f in descriptor.fields}
    for key, field in by_json.items():
        if key != field.name:  # a field with two spellings: give both
            raw = json.dumps({key: None, field.name: None}).encode()
            with pytest.raises(RestError) as raised:
                build_request(binding, {}, [], raw)
            _assert_refusal(raised.value)
