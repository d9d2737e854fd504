"""What proto3 JSON accepts for each field, checked on a parsed JSON value before
``json_format.ParseDict`` turns it into a message.

``json_format`` is the converter, but on its own it is lenient where the proto3 JSON mapping
(https://protobuf.dev/programming-guides/json/), the protobuf conformance suite and grpc-gateway's
parser (Go ``protojson``) refuse: it keeps the last of a field given twice (``userId`` and
``user_id``), wraps enum numbers to 32 bits and takes fractional or unknown ones, reads ``true``
as ``1.0``, ``"1e400"`` as infinity and ``" 1s"`` as a Duration. This walk refuses those, and
names every bad value by its path as the client spelled it: ``text.maxTokens``,
``text.messages[2].role``, ``labels[team]`` (the path style of ``google.rpc.BadRequest``).

Rules, by field kind:

* message: a JSON object (or null); each field at most once, under either of its names; at most
  one member of a oneof non-null; no unknown keys.
* repeated: an array without nulls; map: an object whose keys parse as the key type
  (decimal integers, ``true``/``false``) and whose values are not null.
* integers: a JSON number or a string holding one (``"12"``, ``"1e3"``), whole and within the
  type's range (int32, uint32, int64, uint64); never ``true``/``false``. A literal too long to
  convert (``strict_json.HugeInteger``) is out of range for every number kind.
* float/double: a finite number within range, a string holding one, or ``"NaN"``,
  ``"Infinity"``, ``"-Infinity"``.
* enum: a known value name, or a whole number within int32 that is a known value.
* string: a string of Unicode scalar values (no unpaired surrogate); bytes: base64 (standard or
  URL-safe alphabet, padding optional); bool: ``true`` or ``false``.
* well-known types: Duration ``"-?N[.f{1,9}]s"`` within +-10000 years; Timestamp RFC 3339 with
  upper-case ``T``/``Z``, years 1-9999; FieldMask comma-separated lowerCamelCase paths;
  wrappers as their wrapped scalar; Struct/Value/ListValue any JSON without non-finite numbers;
  Any an object with a resolvable ``@type``.
* null anywhere a field's value stands means "unset", except inside arrays and maps.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pool, duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from genhub.common.errors import FieldViolation
from genhub.gateway.rest import fields
from genhub.gateway.rest.strict_json import HugeInteger, JsonObject, NonFinite

MAX_VIOLATIONS = 20
_T = FieldDescriptor
_INT_RANGE: dict[int, tuple[int, int]] = {
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
_INT32 = _INT_RANGE[_T.TYPE_INT32]
_FLOAT_MAX = 3.4028234663852886e38
# RFC 8259 section 6 number grammar: no leading '+', no leading zeros, no bare '.5' or '1.'.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NAMED_FLOATS = frozenset({"NaN", "Infinity", "-Infinity"})
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}")
_DURATION = re.compile(r"-?[0-9]+(?:\.[0-9]{1,9})?s")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_MASK_PATH = re.compile(r"[a-z][a-zA-Z0-9]*(?:\.[a-z][a-zA-Z0-9]*)*")
_VALUE = "google.protobuf.Value"
_NULL_VALUE = "google.protobuf.NullValue"
_MAX_ECHO = 40


def check_message(message: Descriptor, value: Any, path: str = "") -> list[FieldViolation]:
    """Violations of ``value`` as the proto3 JSON of a ``message``; ``path`` prefixes paths."""
    walk = _Walk()
    walk.message(message, value, path)
    return walk.found


def check_field(field: FieldDescriptor, value: Any, path: str) -> list[FieldViolation]:
    """Violations of ``value`` as the proto3 JSON value of ``field`` (an array for a repeated
    field, an object for a map)."""
    walk = _Walk()
    if value is None and not _takes_null(field):
        return []
    walk.field(field, value, path)
    return walk.found


def check_element(field: FieldDescriptor, value: Any, path: str) -> list[FieldViolation]:
    """Violations of ``value`` as one element of ``field`` (one item of a repeated field, or
    the whole value of a singular one)."""
    walk = _Walk()
    walk.single(field, value, path)
    return walk.found


def check_map_key(field: FieldDescriptor, key: str, path: str) -> list[FieldViolation]:
    """Violations of ``key`` as a JSON object key of a map whose key field is ``field``."""
    walk = _Walk()
    walk.map_key(field, key, path)
    return walk.found


def echo(value: Any) -> str:
    """A short, printable rendering of a client's value for an error description."""
    text = repr(value) if isinstance(value, str) else _kind(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 1] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, NonFinite):
        return value.token
    if isinstance(value, HugeInteger):
        return f"{value.token[:12]}… ({value.digits} digits)"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _takes_null(field: FieldDescriptor) -> bool:
    """Whether null is a value of ``field`` (Value and NullValue) rather than "unset"."""
    if field.message_type is not None:
        return bool(field.message_type.full_name == _VALUE)
    return field.enum_type is not None and field.enum_type.full_name == _NULL_VALUE


@functools.cache
def _keys(message: Descriptor) -> dict[str, FieldDescriptor]:
    """Every key that names a field of ``message``: proto names, then JSON names over them
    (json_format tries the JSON name first). A plain dict, because upb's own name maps fail
    (SystemError) on strings with unpaired surrogates, which JSON escapes can produce."""
    keys = {field.name: field for field in message.fields}
    keys.update({field.json_name: field for field in message.fields})
    return keys


@functools.cache
def _enum_names(enum: EnumDescriptor) -> frozenset[str]:
    return frozenset(value.name for value in enum.values)


class _Walk:
    """One walk over a JSON value, collecting up to MAX_VIOLATIONS violations."""

    def __init__(self) -> None:
        self.found: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        if len(self.found) < MAX_VIOLATIONS:
            self.found.append(FieldViolation(path, description))

    def duplicates(self, value: dict[str, Any], path: str, *, entries: bool = False) -> None:
        for key in getattr(value, "duplicates", ()):
            at = f"{path}[{key}]" if entries else _join(path, key)
            self.add(at, "is given more than once")

    def message(self, message: Descriptor, value: Any, path: str) -> None:
        special = _WELL_KNOWN.get(message.full_name)
        if special is not None:
            special(self, message, value, path)
            return
        if not isinstance(value, dict):
            self.add(path, f"must be a JSON object, not {echo(value)}")
            return
        self.duplicates(value, path)
        given: dict[int, str] = {}
        oneofs: dict[str, str] = {}
        for key, item in value.items():
            at = _join(path, key)
            found = _keys(message).get(key)
            if found is None:
                self.add(at, "is not a field of this message")
                continue
            if (earlier := given.get(found.number)) is not None:
                self.add(at, f"is the same field as {earlier!r}; give it once")
                continue
            given[found.number] = key
            if item is None and not _takes_null(found):
                continue  # proto3 JSON: null is the field's default
            oneof = found.containing_oneof
            if oneof is not None:
                if (other := oneofs.get(oneof.name)) is not None:
                    members = ", ".join(f.json_name for f in oneof.fields)
                    self.add(at, f"cannot be set with {other!r}: only one of {members}")
                    continue
                oneofs[oneof.name] = key
            self.field(found, item, at)

    def field(self, field: FieldDescriptor, value: Any, path: str) -> None:
        if fields.is_map(field):
            self.map(field, value, path)
        elif fields.is_repeated(field):
            if not isinstance(value, list):
                self.add(path, f"must be a JSON array, not {echo(value)}")
                return
            for index, item in enumerate(value):
                self.element(field, item, f"{path}[{index}]")
        else:
            self.single(field, value, path)

    def map(self, field: FieldDescriptor, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.add(path, f"must be a JSON object (a map), not {echo(value)}")
            return
        self.duplicates(value, path, entries=True)
        entry = fields.message_of(field)
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        for key, item in value.items():
            at = f"{path}[{key}]"
            self.map_key(key_field, key, at)
            self.element(value_field, item, at)

    def element(self, field: FieldDescriptor, value: Any, path: str) -> None:
        if value is None and not _takes_null(field):
            self.add(path, "must not be null")
        else:
            self.single(field, value, path)

    def map_key(self, field: FieldDescriptor, key: str, path: str) -> None:
        if field.type == _T.TYPE_BOOL:
            if key not in ("true", "false"):
                self.add(path, "map key must be true or false")
        elif field.type in _INT_RANGE:
            low, high = _INT_RANGE[field.type]
            if not _INTEGER.fullmatch(key) or not low <= int(key) <= high:
                self.add(path, f"map key must be a decimal integer from {low} to {high}")
        else:
            self.text(key, path)

    def single(self, field: FieldDescriptor, value: Any, path: str) -> None:
        if field.message_type is not None:
            self.message(field.message_type, value, path)
        elif field.enum_type is not None:
            self.enum(field.enum_type, value, path)
        elif field.type in _INT_RANGE:
            self.integer(value, *_INT_RANGE[field.type], path)
        elif field.type in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
            self.floating(value, field.type == _T.TYPE_FLOAT, path)
        elif field.type == _T.TYPE_BOOL:
            if not isinstance(value, bool):
                self.add(path, f"must be true or false, not {echo(value)}")
        elif field.type == _T.TYPE_BYTES:
            if not isinstance(value, str) or not _is_base64(value):
                self.add(path, f"must be base64 in a string, not {echo(value)}")
        elif not isinstance(value, str):
            self.add(path, f"must be a string, not {echo(value)}")
        else:
            self.text(value, path)

    def text(self, value: str, path: str) -> None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.add(path, "has an unpaired surrogate (\\ud800-\\udfff); it is not Unicode text")

    def integer(self, value: Any, low: int, high: int, path: str) -> None:
        # A literal of more digits than any number type holds is out of range, whatever the type.
        number = None if isinstance(value, HugeInteger) else _whole(value)
        if isinstance(number, str):
            self.add(path, number)
        elif number is None or not low <= number <= high:
            self.add(path, f"{echo(value)} is out of range ({low} to {high})")

    def floating(self, value: Any, single: bool, path: str) -> None:
        if isinstance(value, str) and value in _NAMED_FLOATS:
            return
        if isinstance(value, NonFinite):
            quoted = f'"{value.token}"'
            self.add(path, f"{value.token} is not JSON; proto3 JSON writes it as {quoted}")
            return
        if isinstance(value, HugeInteger):
            number = math.inf  # more digits than the largest double has
        elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.add(path, f"must be a number, not {echo(value)}")
            return
        elif isinstance(value, str) and not _NUMBER.fullmatch(value):
            self.add(path, f'must be a number (or "NaN", "Infinity"), not {echo(value)}')
            return
        else:
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        if not math.isfinite(number) or (single and abs(number) > _FLOAT_MAX):
            kind = "a float" if single else "a double"
            self.add(path, f"{echo(value)} is out of range for {kind}")

    def enum(self, enum: EnumDescriptor, value: Any, path: str) -> None:
        if value is None and enum.full_name == _NULL_VALUE:
            return
        if isinstance(value, str):
            if value not in _enum_names(enum):
                self.add(path, f"{echo(value)} is not a {enum.name}: {_names(enum)}")
            return
        if isinstance(value, HugeInteger):
            self.add(path, f"{echo(value)} is out of range for an enum (int32)")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"must be a {enum.name} name or number, not {echo(value)}")
            return
        number = _whole(value)
        if isinstance(number, str):
            self.add(path, number)
        elif not _INT32[0] <= number <= _INT32[1]:
            self.add(path, f"{echo(value)} is out of range for an enum (int32)")
        elif number not in enum.values_by_number:
            self.add(path, f"{number} is not a {enum.name} number: {_names(enum)}")


def _whole(value: Any) -> int | str:
    """``value`` as a whole number, read the way json_format reads it; else why not."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"must be a whole number, not {echo(value)}"
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            return f"must be a whole number, not {echo(value)}"
        if _INTEGER.fullmatch(value):
            try:
                return int(value)
            except ValueError:  # more digits than Python converts: far out of any range
                return f"{echo(value)} is out of range"
        try:
            value = float(value)
        except OverflowError:
            return f"{echo(value)} is out of range"
    if not math.isfinite(value):
        return f"{echo(value)} is out of range"
    if not value.is_integer():
        return f"must be a whole number, not {echo(value)}"
    return int(value)


def _names(enum: EnumDescriptor) -> str:
    shown = [f"{v.name} ({v.number})" for v in enum.values[:8]]
    more = ", …" if len(enum.values) > 8 else ""
    return "one of " + ", ".join(shown) + more


def _is_base64(value: str) -> bool:
    body = value.rstrip("=")
    return _BASE64.fullmatch(value) is not None and len(body) % 4 != 1


# Well-known types: proto3 JSON gives each its own form instead of an object of fields.


def _duration(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        walk.add(path, f'must be a Duration string like "1.5s", not {echo(value)}')
        return
    try:
        duration_pb2.Duration().FromJsonString(value)
    except ValueError as exc:
        walk.add(path, f"is not a valid Duration: {exc}")


def _timestamp(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        example = '"2026-01-02T03:04:05Z"'
        walk.add(path, f"must be an RFC 3339 timestamp like {example}, not {echo(value)}")
        return
    try:
        timestamp_pb2.Timestamp().FromJsonString(value)
    except ValueError as exc:
        walk.add(path, f"is not a valid Timestamp: {exc}")


def _field_mask(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    if not isinstance(value, str):
        walk.add(path, f"must be a string of comma-separated field paths, not {echo(value)}")
        return
    for part in value.split(",") if value else ():
        if not _MASK_PATH.fullmatch(part):
            walk.add(path, f"{echo(part)} is not a lowerCamelCase field path")


def _wrapper(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    walk.single(message.fields_by_name["value"], value, path)


def _struct(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        walk.add(path, f"must be a JSON object, not {echo(value)}")
        return
    walk.duplicates(value, path)
    for key, item in value.items():
        walk.text(key, _join(path, key))
        _value(walk, message, item, _join(path, key))


def _list_value(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    if not isinstance(value, list):
        walk.add(path, f"must be a JSON array, not {echo(value)}")
        return
    for index, item in enumerate(value):
        _value(walk, message, item, f"{path}[{index}]")


def _value(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    if isinstance(value, dict):
        _struct(walk, message, value, path)
    elif isinstance(value, list):
        _list_value(walk, message, value, path)
    elif isinstance(value, str):
        walk.text(value, path)
    elif isinstance(value, (int, float, HugeInteger)) and not isinstance(value, bool):
        walk.floating(value, False, path)
    elif value is not None and not isinstance(value, bool):
        walk.add(path, f"{echo(value)} is not a JSON value")


def _any(walk: _Walk, message: Descriptor, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        walk.add(path, f'must be a JSON object with "@type", not {echo(value)}')
        return
    type_url = value.get("@type")
    if not isinstance(type_url, str) or not type_url.isprintable() or not type_url.isascii():
        walk.add(_join(path, "@type"), "is required: the packed message's type URL")
        return
    try:
        packed = descriptor_pool.Default().FindMessageTypeByName(type_url.rsplit("/", 1)[-1])
    except KeyError:
        walk.add(_join(path, "@type"), f"{echo(type_url)} names no message type known here")
        return
    rest = JsonObject((k, v) for k, v in value.items() if k != "@type")
    rest.duplicates = getattr(value, "duplicates", ())
    if packed.full_name in _WELL_KNOWN:
        if set(rest) != {"value"}:
            walk.add(path, f'a packed {packed.full_name} takes only "@type" and "value"')
            return
        walk.message(packed, rest["value"], _join(path, "value"))
    else:
        walk.message(packed, rest, path)


_Special = Callable[[_Walk, Descriptor, Any, str], None]
_WELL_KNOWN: dict[str, _Special] = {
    "google.protobuf.Any": _any,
    "google.protobuf.Duration": _duration,
    "google.protobuf.Timestamp": _timestamp,
    "google.protobuf.FieldMask": _field_mask,
    "google.protobuf.Struct": _struct,
    "google.protobuf.ListValue": _list_value,
    _VALUE: _value,
    **dict.fromkeys(fields.WRAPPERS, _wrapper),
}
