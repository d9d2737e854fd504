"""The strict decoding step, case by case from the proto3 JSON mapping
(https://protobuf.dev/programming-guides/json/), the protobuf conformance suite's JSON cases
(``conformance/binary_json_conformance_suite.cc``: what it requires parsers to accept and to
refuse) and grpc-gateway's query-parameter parser, over a message with every field kind.

Accepted input must give exactly the message ``json_format`` gives; refused input must be a 400
whose BadRequest names the field, by the path the client wrote.
"""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from genhub.gateway.rest import query
from genhub.gateway.rest.bindings import Binding
from genhub.gateway.rest.errors import RestError
from genhub.gateway.rest.paths import PathTemplate
from genhub.gateway.rest.transcode import build_request
from genhub.v1 import task_service_pb2
from tests.support.all_types import AllTypes

_GET_TASK = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].methods_by_name["GetTask"]


def _binding(body: str) -> Binding:
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


BODY = _binding("*")
QUERY = _binding("")


def violations(error: RestError) -> dict[str, str]:
    """The BadRequest field violations of ``error``, field to description."""
    found: dict[str, str] = {}
    for detail in error.status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def refused(binding: Binding, body: bytes, params: list[tuple[str, str]] = ()) -> RestError:  # type: ignore[assignment]
    """The 400 that ``body``/``params`` must get."""
    with pytest.raises(RestError) as raised:
        build_request(binding, {}, list(params), body)
    error = raised.value
    assert error.http_status == 400
    assert error.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    return error


def _digits(template: str, count: int) -> str:
    """``template`` with ``<n>`` replaced by an integer literal of ``count`` digits."""
    return template.replace("<n>", "1" + "0" * (count - 1))


def _reference(text: str) -> Message:
    return json_format.Parse(text, AllTypes(), ignore_unknown_fields=False)


ACCEPTED = [
    # Integers: numbers, strings holding numbers, exponent and trailing-zero forms.
    '{"optionalInt32": 1}',
    '{"optional_int32": -1}',
    '{"optionalInt32": "1"}',
    '{"optionalInt32": "\\u0031"}',
    '{"optionalInt32": 1e5}',
    '{"optionalInt32": 100000.000}',
    '{"optionalInt32": 2.147483647e9}',
    '{"optionalInt32": "1e3"}',
    '{"optionalInt32": -2147483648, "optionalSint32": 2147483647, "optionalSfixed32": -1}',
    '{"optionalUint32": 4294967295, "optionalFixed32": "4294967295"}',
    '{"optionalInt64": "9223372036854775807", "optionalSint64": -9223372036854775808}',
    '{"optionalInt64": 9007199254740993}',
    '{"optionalUint64": "18446744073709551615", "optionalFixed64": 18446744073709551615}',
    # Floating point: finite numbers, strings, the three named values, signed zero.
    '{"optionalDouble": "NaN", "optionalFloat": "-Infinity"}',
    '{"optionalDouble": "Infinity"}',
    '{"optionalDouble": 1.7976931348623157e308, "optionalFloat": 3.4028234663852886e38}',
    '{"optionalDouble": "1.5", "optionalFloat": -0}',
    '{"optionalDouble": 5}',
    # The longest integer literal still converted: 309 digits, within a double's range.
    _digits('{"optionalDouble": <n>, "optionalValue": -<n>}', 309),
    # Booleans, strings (a surrogate pair is one character), bytes in either base64 alphabet.
    '{"optionalBool": true, "repeatedBool": [false, true]}',
    '{"optionalString": "\\ud83d\\ude00 caf\\u00e9"}',
    '{"optionalBytes": "AQID", "repeatedBytes": ["AQI=", "AQI", "-_8=", "+/8="]}',
    # Enums: names, and numbers of known values (negative ones included).
    '{"optionalColor": "COLOR_RED", "repeatedColor": [0, 2, -1, "COLOR_BLUE"]}',
    '{"optionalColor": 1.0}',
    # null is a field's default everywhere a field's value stands.
    '{"optionalInt32": null, "optionalString": null, "child": null, "repeatedInt32": null,'
    ' "mapStringString": null, "optionalDuration": null, "optionalColor": null}',
    # A oneof member that is null does not count (conformance OneofFieldNullFirst/Second).
    '{"oneofString": null, "oneofUint32": 5}',
    '{"oneofUint32": 5, "oneofChild": null}',
    '{"maybeInt32": 0}',
    # Nested and repeated messages, maps with every key kind.
    '{"child": {"child": {"optionalInt32": 3}}, "children": [{}, {"optionalBool": true}]}',
    '{"mapInt32String": {"-5": "x", "0": ""}, "mapBoolBool": {"true": false, "false": true}}',
    '{"mapUint64String": {"18446744073709551615": "max"}, "mapStringChild": {"k": {}}}',
    '{"mapStringColor": {"a": "COLOR_RED", "b": 2}, "mapInt32Int64": {"1": "-7"}}',
    '{"mapStringValue": {"a": null, "b": [1, {"c": "d"}]}}',
    # Well-known types in their JSON forms.
    '{"optionalDuration": "1.5s", "repeatedDuration": ["-0.5s", "315576000000s", "0.000000001s"]}',
    '{"optionalTimestamp": "1970-01-01T08:00:01+08:00"}',
    '{"optionalTimestamp": "0001-01-01T00:00:00Z"}',
    '{"optionalTimestamp": "9999-12-31T23:59:59.999999999Z"}',
    '{"optionalFieldMask": "fooBar,baz.quxQuux"}',
    '{"optionalFieldMask": ""}',
    '{"optionalInt32Wrapper": 5, "optionalStringWrapper": "", "optionalBoolWrapper": false}',
    '{"optionalUint64Wrapper": "18446744073709551615", "optionalBytesWrapper": "AQI="}',
    '{"optionalInt64Wrapper": null, "optionalDoubleWrapper": "NaN"}',
    '{"optionalStruct": {"a": [1, "x", null, true, {"b": {}}], "": 2.5}}',
    '{"optionalValue": null}',
    '{"optionalValue": [1, {"a": false}]}',
    '{"optionalListValue": [[], {}, "s", -1e300]}',
    '{"repeatedValue": [null, 1, "x"]}',
    '{"optionalAny": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s"}}',
    '{"optionalAny": {"@type": "type.googleapis.com/genhub.test.AllTypes", "optionalInt32": 5}}',
    '{"optionalEmpty": {}}',
    '{"optionalNullValue": null}',
    '{"optionalNullValue": "NULL_VALUE"}',
    "{}",
    "  {}  \n",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted_bodies_give_json_formats_message(text: str) -> None:
    assert build_request(BODY, {}, [], text.encode()) == _reference(text)


REFUSED = [
    # A field given twice: the same key, or its JSON name and its proto name (conformance
    # FieldNameDuplicate*), at any depth, in maps and Structs too, null or not.
    ('{"optionalInt32": 1, "optionalInt32": 2}', "optionalInt32"),
    ('{"optionalInt32": 1, "optional_int32": 2}', "optional_int32"),
    ('{"optionalInt32": null, "optional_int32": 1}', "optional_int32"),
    ('{"child": {"optionalString": "a", "optional_string": "b"}}', "child.optional_string"),
    (
        '{"children": [{}, {"optionalBool": true, "optionalBool": false}]}',
        "children[1].optionalBool",
    ),
    ('{"mapStringString": {"k": "a", "k": "b"}}', "mapStringString[k]"),
    (
        '{"mapStringChild": {"k": {"optionalInt32": 1, "optional_int32": 1}}}',
        "mapStringChild[k].optional_int32",
    ),
    ('{"optionalStruct": {"a": 1, "a": 2}}', "optionalStruct.a"),
    ('{"oneofString": "a", "oneofUint32": 1}', "oneofUint32"),
    # Integers: out of range, fractional, not numbers, not JSON-number strings.
    ('{"optionalInt32": 2147483648}', "optionalInt32"),
    ('{"optionalInt32": -2147483649}', "optionalInt32"),
    ('{"optionalInt32": 0.5}', "optionalInt32"),
    ('{"optionalInt32": "0.5"}', "optionalInt32"),
    ('{"optionalInt32": "1 "}', "optionalInt32"),
    ('{"optionalInt32": " 1"}', "optionalInt32"),
    ('{"optionalInt32": "+1"}', "optionalInt32"),
    ('{"optionalInt32": "01"}', "optionalInt32"),
    ('{"optionalInt32": "0x10"}', "optionalInt32"),
    ('{"optionalInt32": true}', "optionalInt32"),
    ('{"optionalInt32": []}', "optionalInt32"),
    ('{"optionalUint32": 4294967296}', "optionalUint32"),
    ('{"optionalUint32": -1}', "optionalUint32"),
    ('{"optionalInt64": "9223372036854775808"}', "optionalInt64"),
    ('{"optionalInt64": 1e400}', "optionalInt64"),
    ('{"optionalUint64": "18446744073709551616"}', "optionalUint64"),
    ('{"optionalUint64": -1}', "optionalUint64"),
    ('{"repeatedInt32": [1, 2.5]}', "repeatedInt32[1]"),
    # Integer literals of more digits than Python converts (4300) or any number type holds.
    (_digits('{"optionalInt32": <n>}', 5001), "optionalInt32"),
    (_digits('{"optionalUint64": -<n>}', 5001), "optionalUint64"),
    (_digits('{"optionalInt64Wrapper": <n>}', 310), "optionalInt64Wrapper"),
    (_digits('{"repeatedInt64": [1, <n>]}', 5001), "repeatedInt64[1]"),
    (_digits('{"mapStringInt64": {"k": <n>}}', 5001), "mapStringInt64[k]"),
    (_digits('{"optionalColor": <n>}', 5001), "optionalColor"),
    (_digits('{"optionalDouble": <n>}', 310), "optionalDouble"),
    (_digits('{"optionalFloat": <n>}', 5001), "optionalFloat"),
    (_digits('{"optionalStruct": {"a": <n>}}', 5001), "optionalStruct.a"),
    (_digits('{"optionalValue": [<n>]}', 5001), "optionalValue[0]"),
    (_digits('{"optionalString": <n>}', 5001), "optionalString"),
    # Floating point: beyond float/double range, non-finite tokens, other spellings, booleans.
    ('{"optionalFloat": 3.502823e+38}', "optionalFloat"),
    ('{"optionalFloat": "-3.502823e+38"}', "optionalFloat"),
    ('{"optionalDouble": 1.89769e308}', "optionalDouble"),
    ('{"optionalDouble": "1e400"}', "optionalDouble"),
    ('{"optionalDouble": NaN}', "optionalDouble"),
    ('{"optionalDouble": -Infinity}', "optionalDouble"),
    ('{"optionalDouble": "nan"}', "optionalDouble"),
    ('{"optionalDouble": "inf"}', "optionalDouble"),
    ('{"optionalDouble": " 1"}', "optionalDouble"),
    ('{"optionalDouble": true}', "optionalDouble"),
    # Booleans only as true/false (conformance BoolFieldIntegerZero, BoolFieldStringTrue...).
    ('{"optionalBool": 0}', "optionalBool"),
    ('{"optionalBool": "true"}', "optionalBool"),
    # Strings: only strings, only Unicode scalar values.
    ('{"optionalString": 1}', "optionalString"),
    ('{"optionalString": "\\ud800"}', "optionalString"),
    ('{"repeatedString": ["ok", "\\udc00x"]}', "repeatedString[1]"),
    # Bytes: base64, one alphabet, a possible length.
    ('{"optionalBytes": "A"}', "optionalBytes"),
    ('{"optionalBytes": "AQ!D"}', "optionalBytes"),
    ('{"optionalBytes": "AQ-+"}', "optionalBytes"),
    ('{"optionalBytes": 5}', "optionalBytes"),
    # Enums: known names; whole numbers within int32 that are known values.
    ('{"optionalColor": "COLOR_GREEN"}', "optionalColor"),
    ('{"optionalColor": "color_red"}', "optionalColor"),
    ('{"optionalColor": 2.5}', "optionalColor"),
    ('{"optionalColor": 4294967297}', "optionalColor"),
    ('{"optionalColor": 3}', "optionalColor"),
    ('{"optionalColor": -2147483649}', "optionalColor"),
    ('{"optionalColor": true}', "optionalColor"),
    ('{"optionalColor": "1"}', "optionalColor"),
    ('{"repeatedColor": ["COLOR_RED", 9]}', "repeatedColor[1]"),
    ('{"mapStringColor": {"k": 7}}', "mapStringColor[k]"),
    # Messages, arrays and maps: the right JSON type, no null elements or values.
    ('{"child": "x"}', "child"),
    ('{"child": []}', "child"),
    ('{"children": [null]}', "children[0]"),
    ('{"children": {}}', "children"),
    ('{"repeatedInt32": [1, null]}', "repeatedInt32[1]"),
    ('{"repeatedInt32": 1}', "repeatedInt32"),
    ('{"mapStringString": []}', "mapStringString"),
    ('{"mapStringString": {"k": null}}', "mapStringString[k]"),
    ('{"mapStringInt64": {"k": "x"}}', "mapStringInt64[k]"),
    ('{"mapInt32String": {"x": "a"}}', "mapInt32String[x]"),
    ('{"mapInt32String": {"1.0": "a"}}', "mapInt32String[1.0]"),
    ('{"mapInt32String": {"2147483648": "a"}}', "mapInt32String[2147483648]"),
    ('{"mapBoolBool": {"TRUE": true}}', "mapBoolBool[TRUE]"),
    ('{"mapUint64String": {"-1": ""}}', "mapUint64String[-1]"),
    # Unknown names, extensions, @type outside Any.
    ('{"unknownField": 1}', "unknownField"),
    ('{"child": {"nope": 1}}', "child.nope"),
    ('{"[genhub.ext]": 1}', "[genhub.ext]"),
    ('{"@type": "x"}', "@type"),
    # Well-known types in any other form.
    ('{"optionalDuration": "1"}', "optionalDuration"),
    ('{"optionalDuration": "1.5S"}', "optionalDuration"),
    ('{"optionalDuration": " 1s"}', "optionalDuration"),
    ('{"optionalDuration": "+1s"}', "optionalDuration"),
    ('{"optionalDuration": ".5s"}', "optionalDuration"),
    ('{"optionalDuration": "315576000001s"}', "optionalDuration"),
    ('{"optionalDuration": "1.0000000001s"}', "optionalDuration"),
    ('{"optionalDuration": 30}', "optionalDuration"),
    ('{"optionalDuration": {"seconds": 1}}', "optionalDuration"),
    ('{"optionalTimestamp": "1970-01-01T00:00:00"}', "optionalTimestamp"),
    ('{"optionalTimestamp": "1970-01-01t00:00:00z"}', "optionalTimestamp"),
    ('{"optionalTimestamp": "1970-01-01 00:00:00Z"}', "optionalTimestamp"),
    ('{"optionalTimestamp": "0000-01-01T00:00:00Z"}', "optionalTimestamp"),
    ('{"optionalTimestamp": "10000-01-01T00:00:00Z"}', "optionalTimestamp"),
    ('{"optionalTimestamp": "1970-02-30T00:00:00Z"}', "optionalTimestamp"),
    ('{"optionalTimestamp": "1970-01-01T00:00:00.1234567891Z"}', "optionalTimestamp"),
    ('{"optionalTimestamp": 0}', "optionalTimestamp"),
    ('{"optionalFieldMask": "foo_bar"}', "optionalFieldMask"),
    ('{"optionalFieldMask": "a,,b"}', "optionalFieldMask"),
    ('{"optionalFieldMask": ["a"]}', "optionalFieldMask"),
    ('{"optionalFieldMask": {"paths": ["a"]}}', "optionalFieldMask"),
    ('{"optionalInt32Wrapper": "x"}', "optionalInt32Wrapper"),
    ('{"optionalInt32Wrapper": {"value": 1}}', "optionalInt32Wrapper"),
    ('{"optionalBoolWrapper": "true"}', "optionalBoolWrapper"),
    ('{"optionalStruct": [1]}', "optionalStruct"),
    ('{"optionalStruct": {"a": NaN}}', "optionalStruct.a"),
    ('{"optionalValue": Infinity}', "optionalValue"),
    ('{"optionalValue": 1e400}', "optionalValue"),
    ('{"optionalListValue": {}}', "optionalListValue"),
    ('{"optionalAny": {"value": "1s"}}', "optionalAny.@type"),
    ('{"optionalAny": {"@type": "type.googleapis.com/no.Such"}}', "optionalAny.@type"),
    ('{"optionalAny": {"@type": "type.googleapis.com/google.protobuf.Duration"}}', "optionalAny"),
    (
        '{"optionalAny": {"@type": "type.googleapis.com/genhub.test.AllTypes", "nope": 1}}',
        "optionalAny.nope",
    ),
    ('{"optionalEmpty": {"a": 1}}', "optionalEmpty.a"),
    ('{"optionalNullValue": "NULL"}', "optionalNullValue"),
    ('{"optionalNullValue": 1}', "optionalNullValue"),
]


@pytest.mark.parametrize(("text", "field"), REFUSED)
def test_refused_bodies_name_the_field(text: str, field: str) -> None:
    error = refused(BODY, text.encode())
    assert field in violations(error), violations(error)
    assert f"{field}: " in error.status.message


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b"null",
        b'"x"',
        b"1",
        b"{",
        b"\xff{}",
        b"\xef\xbb\xbf{}",  # a byte order mark (RFC 8259 section 8.1)
        b'{"optionalInt32": 1} x',
        b'{"optionalInt32": 01}',
        b'{"optionalDouble": .5}',
        b"{'optionalInt32': 1}",
        b'{"optionalInt32": 1,}',
        b'{"optionalString": "a\tb"}',  # a raw control character inside a string
        b'{"optionalString": "\\x41"}',
        b'{"child": ' * 40 + b"{}" + b"}" * 40,  # nested deeper than strict_json.MAX_DEPTH
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_bodies_that_are_not_a_json_object_name_the_body(raw: bytes) -> None:
    assert list(violations(refused(BODY, raw))) == ["body"]


def test_huge_integer_literals_are_out_of_range_not_invalid_json() -> None:
    # Python refuses to convert more than 4300 digits; the refusal must still name the field
    # and say what is wrong in the API's terms, not Python's (sys.set_int_max_str_digits).
    body = _digits('{"child": {"optionalInt32": <n>}}', 5000).encode()
    found = violations(refused(BODY, body))
    assert found == {
        "child.optionalInt32": (
            "100000000000… (5000 digits) is out of range (-2147483648 to 2147483647)"
        )
    }
    found = violations(refused(BODY, _digits("<n>", 5000).encode()))
    assert found == {"body": "must be a JSON object, not 100000000000… (5000 digits)"}


def test_every_violation_is_reported_at_once() -> None:
    text = '{"optionalInt32": "x", "child": {"optionalColor": 9}, "nope": 1, "nope": 2}'
    assert violations(refused(BODY, text.encode())) == {
        "optionalInt32": "must be a whole number, not 'x'",
        "child.optionalColor": (
            "9 is not a Color number: one of COLOR_UNSPECIFIED (0), COLOR_RED (1), "
            "COLOR_BLUE (2), COLOR_NEGATIVE (-1)"
        ),
        "nope": "is not a field of this message",
    }


def test_values_echoed_in_errors_are_valid_utf8() -> None:
    # An unpaired surrogate in a key cannot be written as UTF-8; it is escaped instead.
    error = refused(BODY, b'{"\\ud800": 1}')
    assert list(violations(error)) == ["\\ud800"]
    json.dumps(error.status.message).encode("utf-8")


QUERY_ACCEPTED: list[tuple[list[tuple[str, str]], dict[str, object]]] = [
    (
        [("optionalInt32", "5"), ("optional_int64", "-7")],
        {"optionalInt32": 5, "optionalInt64": "-7"},
    ),
    ([("optionalUint64", "18446744073709551615")], {"optionalUint64": "18446744073709551615"}),
    (
        [("optionalBool", "t"), ("repeatedBool", "TRUE"), ("repeatedBool", "0")],
        {"optionalBool": True, "repeatedBool": [True, False]},
    ),
    (
        [("optionalColor", "COLOR_RED"), ("repeatedColor", "2"), ("repeatedColor", "-1")],
        {"optionalColor": 1, "repeatedColor": [2, -1]},
    ),
    ([("repeatedInt32", "1"), ("repeated_int32", "2")], {"repeatedInt32": [1, 2]}),
    (
        [("mapStringString[k]", "v"), ("mapInt32String[-5]", ""), ("mapBoolBool[true]", "f")],
        {
            "mapStringString": {"k": "v"},
            "mapInt32String": {"-5": ""},
            "mapBoolBool": {"true": False},
        },
    ),
    (
        [("child.child.optionalString", "deep"), ("child.optionalDouble", "NaN")],
        {"child": {"child": {"optionalString": "deep"}, "optionalDouble": "NaN"}},
    ),
    (
        [
            ("optionalDuration", "1.5s"),
            ("optionalTimestamp", "2026-01-02T03:04:05Z"),
            ("optionalFieldMask", "a,b.c"),
        ],
        {
            "optionalDuration": "1.5s",
            "optionalTimestamp": "2026-01-02T03:04:05Z",
            "optionalFieldMask": "a,b.c",
        },
    ),
    (
        [
            ("optionalInt32Wrapper", "5"),
            ("optionalBoolWrapper", "false"),
            ("optionalBytes", "AQI="),
        ],
        {"optionalInt32Wrapper": 5, "optionalBoolWrapper": False, "optionalBytes": "AQI="},
    ),
    ([("oneofString", "x"), ("optionalString", "")], {"oneofString": "x", "optionalString": ""}),
]


@pytest.mark.parametrize(("params", "expected"), QUERY_ACCEPTED)
def test_accepted_query_parameters(
    params: list[tuple[str, str]], expected: dict[str, object]
) -> None:
    reference = json_format.ParseDict(expected, AllTypes())
    assert build_request(QUERY, {}, params, b"") == reference


QUERY_REFUSED = [
    ([("optionalInt32", "1e3")], "optionalInt32"),
    ([("optionalInt32", "1.0")], "optionalInt32"),
    ([("optionalInt32", "2147483648")], "optionalInt32"),
    ([("optionalInt32", " 5")], "optionalInt32"),
    ([("optionalInt32", "")], "optionalInt32"),
    ([("optionalUint32", "-1")], "optionalUint32"),
    ([("optionalColor", "3")], "optionalColor"),
    ([("optionalColor", "4294967297")], "optionalColor"),
    ([("optionalColor", "COLOR_GREEN")], "optionalColor"),
    ([("optionalColor", "1.0")], "optionalColor"),
    ([("optionalBool", "yes")], "optionalBool"),
    ([("optionalDouble", "1e400")], "optionalDouble"),
    ([("optionalString", "\ud800")], "optionalString"),
    ([("optionalInt32", "1"), ("optional_int32", "2")], "optional_int32"),
    ([("optionalString", "a"), ("optionalString", "b")], "optionalString"),
    ([("mapStringString[k]", "a"), ("mapStringString[k]", "b")], "mapStringString[k]"),
    ([("mapInt32String[x]", "v")], "mapInt32String[x]"),
    ([("mapBoolBool[yes]", "true")], "mapBoolBool[yes]"),
    ([("mapStringString", "v")], "mapStringString"),
    ([("optionalString[k]", "v")], "optionalString[k]"),
    ([("mapStringChild[k]", "v")], "mapStringChild[k]"),
    ([("child", "x")], "child"),
    ([("optionalStruct", "{}")], "optionalStruct"),
    ([("children", "x")], "children"),
    ([("children.optionalInt32", "1")], "children.optionalInt32"),
    ([("unknown", "1")], "unknown"),
    ([("optionalDuration", "1")], "optionalDuration"),
    ([("optionalTimestamp", "yesterday")], "optionalTimestamp"),
    ([("optionalFieldMask", "a_b")], "optionalFieldMask"),
    ([("oneofString", "a"), ("oneofUint32", "1")], "oneofUint32"),
]


@pytest.mark.parametrize(("params", "field"), QUERY_REFUSED)
def test_refused_query_parameters_name_the_parameter(
    params: list[tuple[str, str]], field: str
) -> None:
    assert field in violations(refused(QUERY, b"", params))


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        (b"", []),
        (b"a=1&b=&c&&a=2", [("a", "1"), ("b", ""), ("c", ""), ("a", "2")]),
        (b"q=red+fox%21&k%5Bx%5D=%E7%8C%AB", [("q", "red fox!"), ("k[x]", "猫")]),
        (b"eq=a=b", [("eq", "a=b")]),
    ],
)
def test_query_strings_are_parsed_as_form_encoding(
    raw: bytes, pairs: list[tuple[str, str]]
) -> None:
    assert query.parse(raw) == pairs


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"a=%zz", "a"),
        (b"a=%e", "a"),
        (b"a=%ff%fe", "a"),
        (b"%ff=1", "query"),
        (b"&".join([b"p=1"] * (query.MAX_PARAMS + 1)), "query"),
    ],
)
def test_malformed_query_strings_are_refused(raw: bytes, field: str) -> None:
    with pytest.raises(RestError) as raised:
        query.parse(raw)
    assert raised.value.http_status == 400
    assert list(violations(raised.value)) == [field]
