"""Hypothesis strategies for proto3 JSON request bodies, driven by message descriptors.

``bodies(descriptor)`` draws request bodies as raw bytes: mostly well-formed JSON objects whose
keys are the message's field names (JSON and proto spellings, sometimes both, sometimes twice,
sometimes unknown) and whose values are valid for the field or near misses (boundary and
out-of-range numbers, fractions, numbers as strings, the wrong JSON type, null, bare ``NaN``,
unpaired surrogates, malformed well-known-type strings), and now and then bytes that are not
JSON or not UTF-8. ``valid_json(descriptor)`` draws only values proto3 JSON accepts.

The JSON text is written here rather than by ``json.dumps`` so that it can hold what a Python
dict cannot: repeated keys and non-finite tokens.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

_T = FieldDescriptor
_RANGES: dict[int, tuple[int, int]] = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}
_MAX_DEPTH = 3
_WRAPPERS = {
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
}


@dataclass(frozen=True)
class Raw:
    """JSON text written as is (``NaN``, ``"\\ud800"``)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object as its key/value pairs, repeats allowed."""

    items: tuple[tuple[str, Any], ...]


def dump(value: Any) -> str:
    """``value`` as JSON text (``Pairs`` as objects, ``Raw`` verbatim)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items) + "}"
    if isinstance(value, dict):
        return dump(Pairs(tuple(value.items())))
    if isinstance(value, list):
        return "[" + ",".join(dump(item) for item in value) + "]"
    return json.dumps(value)


def plain(value: Any) -> Any:
    """``value`` without ``Pairs`` (last key wins), for values without ``Raw``."""
    if isinstance(value, Pairs):
        return {k: plain(v) for k, v in value.items}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


@functools.cache
def _junk() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=4),
        st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw('"\\ud800"')]),
        st.sampled_from(["NaN", "1e400", "-0", "1.0", " 1", "01", "0x1", "+1", "1e3"]),
        st.just([]),
        st.just({}),
        st.lists(st.integers(-3, 3), max_size=2),
    )


@functools.cache
def _integers(field: FieldDescriptor, valid: bool) -> st.SearchStrategy[Any]:
    low, high = _RANGES[field.type]
    good = st.one_of(
        st.integers(low, high),
        st.integers(low, high).map(str),
        st.sampled_from([low, high, 0]),
        st.integers(max(low, -1000), min(high, 1000)).map(float),
    )
    if valid:
        return good
    near = st.sampled_from([low - 1, high + 1, 2**32 + 3, 4294967299, -(2**31) - 1, 0.5, -1.5])
    return st.one_of(good, near, near.map(str), _junk())


@functools.cache
def _floats(field: FieldDescriptor, valid: bool) -> st.SearchStrategy[Any]:
    single = field.type == _T.TYPE_FLOAT
    good = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, width=32 if single else 64),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1.5", "-2e10", 0, -7]),
    )
    if valid:
        return good
    return st.one_of(good, st.sampled_from([3.5e38, 1e308, "1e400", "inf", "nan"]), _junk())


@functools.cache
def _enum(field: FieldDescriptor, valid: bool) -> st.SearchStrategy[Any]:
    enum = field.enum_type
    assert enum is not None
    names = [v.name for v in enum.values]
    numbers = [v.number for v in enum.values]
    good = st.one_of(st.sampled_from(names), st.sampled_from(numbers))
    if valid:
        return good
    bad = st.sampled_from(
        [max(numbers) + 1, 2**32 + numbers[-1], 1.5, "1", names[-1].lower(), "UNKNOWN", True]
    )
    return st.one_of(good, bad, _junk())


@functools.cache
def _text(valid: bool) -> st.SearchStrategy[Any]:
    good = st.text(max_size=12)
    return good if valid else st.one_of(good, _junk())


@functools.cache
def _bytes(valid: bool) -> st.SearchStrategy[Any]:
    raw = st.binary(max_size=8)
    good = st.one_of(
        raw.map(lambda b: base64.b64encode(b).decode()),
        raw.map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    )
    return good if valid else st.one_of(good, st.sampled_from(["A", "AQ!D", "A-+b"]), _junk())


@functools.cache
def _duration(valid: bool) -> st.SearchStrategy[Any]:
    good = st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=30)).map(
        lambda d: _ts_json(duration_pb2.Duration(), d)
    )
    bad = st.sampled_from(["1", "1S", " 1s", "+1s", ".5s", "1.s", "315576000001s", 30])
    return good if valid else st.one_of(good, bad, _junk())


@functools.cache
def _timestamp(valid: bool) -> st.SearchStrategy[Any]:
    good = st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda d: _ts_json(timestamp_pb2.Timestamp(), d))
    bad = st.sampled_from(
        [
            "1970-01-01T00:00:00",
            "1970-01-01t00:00:00z",
            "0000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            0,
        ]
    )
    return good if valid else st.one_of(good, bad, _junk())


def _ts_json(message: Any, value: Any) -> str:
    if isinstance(value, timedelta):
        message.FromTimedelta(value)
    else:
        message.FromDatetime(value)
    return str(message.ToJsonString())


@functools.cache
def _field_mask(valid: bool) -> st.SearchStrategy[Any]:
    path = st.from_regex(r"[a-z][a-zA-Z0-9]{0,5}(\.[a-z][a-zA-Z0-9]{0,5})?", fullmatch=True)
    good = st.lists(path, max_size=3).map(",".join)
    return good if valid else st.one_of(good, st.sampled_from(["a_b", "a,,b", ["a"]]), _junk())


@functools.cache
def _json_value(valid: bool) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
    )
    if not valid:
        leaves = st.one_of(leaves, st.sampled_from([Raw("NaN"), Raw("1e400")]))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.text(max_size=4), inner, max_size=3),
        ),
        max_leaves=6,
    )


@functools.cache
def _single(field: FieldDescriptor, valid: bool, depth: int) -> st.SearchStrategy[Any]:
    message = field.message_type
    if message is not None:
        name = message.full_name
        if name in _WRAPPERS:
            return _single(message.fields_by_name["value"], valid, depth)
        if name == "google.protobuf.Duration":
            return _duration(valid)
        if name == "google.protobuf.Timestamp":
            return _timestamp(valid)
        if name == "google.protobuf.FieldMask":
            return _field_mask(valid)
        if name == "google.protobuf.Struct":
            return st.dictionaries(st.text(max_size=4), _json_value(valid), max_size=3)
        if name == "google.protobuf.ListValue":
            return st.lists(_json_value(valid), max_size=3)
        if name == "google.protobuf.Value":
            return _json_value(valid)
        if name == "google.protobuf.Any":
            return st.just({"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s"})
        if depth >= _MAX_DEPTH:
            return st.just({})
        return _message(message, valid, depth + 1)
    if field.enum_type is not None:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return st.sampled_from([None, "NULL_VALUE", 0])
        return _enum(field, valid)
    if field.type in _RANGES:
        return _integers(field, valid)
    if field.type in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        return _floats(field, valid)
    if field.type == _T.TYPE_BOOL:
        return st.booleans() if valid else st.one_of(st.booleans(), _junk())
    if field.type == _T.TYPE_BYTES:
        return _bytes(valid)
    return _text(valid)


@functools.cache
def _map_key(field: FieldDescriptor, valid: bool) -> st.SearchStrategy[str]:
    if field.type == _T.TYPE_BOOL:
        good: st.SearchStrategy[str] = st.sampled_from(["true", "false"])
    elif field.type in _RANGES:
        good = st.integers(*_RANGES[field.type]).map(str)
    else:
        good = st.text(max_size=6)
    return good if valid else st.one_of(good, st.sampled_from(["x", "1.0", "TRUE", "-1"]))


@functools.cache
def _value(field: FieldDescriptor, valid: bool, depth: int) -> st.SearchStrategy[Any]:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        pairs = st.lists(st.tuples(_map_key(key, valid), _single(value, valid, depth)), max_size=3)
        good = pairs.map(lambda items: Pairs(tuple(dict(items).items())))
        return good if valid else st.one_of(pairs.map(lambda items: Pairs(tuple(items))), _junk())
    if field.is_repeated:
        items = st.lists(_single(field, valid, depth), max_size=3)
        return items if valid else st.one_of(items, _junk())
    return _single(field, valid, depth)


@functools.cache
def _message(message: Descriptor, valid: bool, depth: int = 0) -> st.SearchStrategy[Pairs]:
    if not message.fields:
        return st.just(Pairs(()))

    @st.composite
    def pairs(draw: st.DrawFn) -> Pairs:
        chosen = draw(st.lists(st.sampled_from(list(message.fields)), max_size=4, unique=not valid))
        oneofs: set[str] = set()
        items: list[tuple[str, Any]] = []
        for field in chosen:
            oneof = field.containing_oneof
            if valid and oneof is not None and len(oneof.fields) > 1:
                if oneof.name in oneofs:
                    continue
                oneofs.add(oneof.name)
            spellings = [field.json_name, field.name]
            key = draw(st.sampled_from(spellings)) if not valid else field.json_name
            items.append((key, draw(_value(field, valid, depth))))
            if not valid and draw(st.integers(0, 9)) == 0:
                other = field.name if key == field.json_name else field.json_name
                items.append((other, draw(_value(field, valid, depth))))
        if not valid and draw(st.integers(0, 9)) == 0:
            items.append((draw(st.sampled_from(["bogus", "@type", "[ext]", "", "\ud800"])), 1))
        return Pairs(tuple(items))

    return pairs()


def valid_json(message: Descriptor) -> st.SearchStrategy[Any]:
    """JSON objects (plain dicts) that proto3 JSON accepts for ``message`` (no field twice, at
    most one member of each oneof)."""
    return _message(message, True).map(plain)


def bodies(message: Descriptor) -> st.SearchStrategy[bytes]:
    """Raw request bodies for ``message``, good and bad (see the module docstring)."""
    text = st.one_of(
        _message(message, False).map(dump),
        valid_json(message).map(dump),
        _json_value(False).map(dump),
    )
    damaged = st.tuples(text, st.binary(min_size=1, max_size=3), st.integers(0, 40)).map(
        lambda t: t[0].encode()[: t[2]] + t[1] + t[0].encode()[t[2] :]
    )
    return st.one_of(
        text.map(str.encode),
        text.map(str.encode),
        text.map(str.encode),
        damaged,
    )


def is_finite_json(value: Any) -> bool:
    """Whether ``value`` (plain JSON) has no non-finite float."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_finite_json(v) for v in value.values())
    if isinstance(value, list):
        return all(is_finite_json(v) for v in value)
    return True
