"""``genhub.test.AllTypes``: one message with a field of every kind proto3 JSON maps (every
scalar type, an enum, nested and repeated messages, maps with each key kind, oneof, proto3
optional, and every well-known type), after the conformance suite's ``TestAllTypesProto3``.

GenHub's own request messages use only some kinds; the REST layer's decoding is generic, so its
tests run against this message too. Built from a ``FileDescriptorProto`` at import (no protoc).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

_F = descriptor_pb2.FieldDescriptorProto
PACKAGE = "genhub.test"
NAME = f"{PACKAGE}.AllTypes"
_SCALARS = {
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "sint32": _F.TYPE_SINT32,
    "sint64": _F.TYPE_SINT64,
    "fixed32": _F.TYPE_FIXED32,
    "fixed64": _F.TYPE_FIXED64,
    "sfixed32": _F.TYPE_SFIXED32,
    "sfixed64": _F.TYPE_SFIXED64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
_WELL_KNOWN = {
    "duration": "google.protobuf.Duration",
    "timestamp": "google.protobuf.Timestamp",
    "field_mask": "google.protobuf.FieldMask",
    "struct": "google.protobuf.Struct",
    "value": "google.protobuf.Value",
    "list_value": "google.protobuf.ListValue",
    "any": "google.protobuf.Any",
    "empty": "google.protobuf.Empty",
    "int32_wrapper": "google.protobuf.Int32Value",
    "int64_wrapper": "google.protobuf.Int64Value",
    "uint64_wrapper": "google.protobuf.UInt64Value",
    "double_wrapper": "google.protobuf.DoubleValue",
    "bool_wrapper": "google.protobuf.BoolValue",
    "string_wrapper": "google.protobuf.StringValue",
    "bytes_wrapper": "google.protobuf.BytesValue",
}
# Imported modules load the well-known types into the default pool this file depends on.
_IMPORTS = [
    module.DESCRIPTOR.name
    for module in (
        any_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        struct_pb2,
        timestamp_pb2,
        wrappers_pb2,
    )
]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="genhub_test/all_types.proto", package=PACKAGE, syntax="proto3"
    )
    proto.dependency.extend(_IMPORTS)
    color = proto.enum_type.add(name="Color")
    for number, value in enumerate(["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_BLUE"]):
        color.value.add(name=value, number=number)
    color.value.add(name="COLOR_NEGATIVE", number=-1)
    message = proto.message_type.add(name="AllTypes")
    number = 0

    def add(name: str, kind: int, *, repeated: bool = False, **extra: Any) -> _F:
        nonlocal number
        number += 1
        label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
        return message.field.add(
            name=name, number=number, type=kind, label=label, json_name=_camel(name), **extra
        )

    for scalar, kind in _SCALARS.items():
        add(f"optional_{scalar}", kind)
        add(f"repeated_{scalar}", kind, repeated=True)
    for name, type_name in (("optional_color", ".genhub.test.Color"),):
        add(name, _F.TYPE_ENUM, type_name=type_name)
    add("repeated_color", _F.TYPE_ENUM, repeated=True, type_name=".genhub.test.Color")
    add("child", _F.TYPE_MESSAGE, type_name=f".{NAME}")
    add("children", _F.TYPE_MESSAGE, repeated=True, type_name=f".{NAME}")
    for name, type_name in _WELL_KNOWN.items():
        add(f"optional_{name}", _F.TYPE_MESSAGE, type_name=f".{type_name}")
    add("repeated_value", _F.TYPE_MESSAGE, repeated=True, type_name=".google.protobuf.Value")
    add("repeated_duration", _F.TYPE_MESSAGE, repeated=True, type_name=".google.protobuf.Duration")
    add("optional_null_value", _F.TYPE_ENUM, type_name=".google.protobuf.NullValue")
    for key, key_type in (("string", _F.TYPE_STRING), ("int32", _F.TYPE_INT32)):
        for value, value_type, value_name in (
            ("string", _F.TYPE_STRING, ""),
            ("int64", _F.TYPE_INT64, ""),
            ("color", _F.TYPE_ENUM, ".genhub.test.Color"),
            ("child", _F.TYPE_MESSAGE, f".{NAME}"),
        ):
            _map(message, add, f"map_{key}_{value}", key_type, value_type, value_name)
    _map(message, add, "map_bool_bool", _F.TYPE_BOOL, _F.TYPE_BOOL, "")
    _map(message, add, "map_uint64_string", _F.TYPE_UINT64, _F.TYPE_STRING, "")
    _map(
        message, add, "map_string_value", _F.TYPE_STRING, _F.TYPE_MESSAGE, ".google.protobuf.Value"
    )
    oneof_index = len(message.oneof_decl)
    message.oneof_decl.add(name="choice")
    add("oneof_string", _F.TYPE_STRING, oneof_index=oneof_index)
    add("oneof_uint32", _F.TYPE_UINT32, oneof_index=oneof_index)
    add("oneof_child", _F.TYPE_MESSAGE, oneof_index=oneof_index, type_name=f".{NAME}")
    # proto3 `optional int32 maybe_int32`: a synthetic one-member oneof.
    synthetic = len(message.oneof_decl)
    message.oneof_decl.add(name="_maybe_int32")
    add("maybe_int32", _F.TYPE_INT32, oneof_index=synthetic, proto3_optional=True)
    return proto


def _map(
    message: descriptor_pb2.DescriptorProto,
    add: Any,
    name: str,
    key_type: int,
    value_type: int,
    value_type_name: str,
) -> None:
    entry_name = "".join(part.capitalize() for part in name.split("_")) + "Entry"
    entry = message.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=key_type, label=_F.LABEL_OPTIONAL, json_name="key")
    value = entry.field.add(
        name="value", number=2, type=value_type, label=_F.LABEL_OPTIONAL, json_name="value"
    )
    if value_type_name:
        value.type_name = value_type_name
    add(name, _F.TYPE_MESSAGE, repeated=True, type_name=f".{NAME}.{entry_name}")


def _load() -> Descriptor:
    pool = descriptor_pool.Default()
    try:
        return pool.FindMessageTypeByName(NAME)
    except KeyError:
        pool.AddSerializedFile(_file().SerializeToString())
        return pool.FindMessageTypeByName(NAME)


DESCRIPTOR: Descriptor = _load()
AllTypes: type[Message] = message_factory.GetMessageClass(DESCRIPTOR)
