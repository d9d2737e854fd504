"""Field paths (``config.provider``) resolved against message descriptors."""

from __future__ import annotations

from typing import cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

# Well-known types that proto3 JSON writes as a single string (or scalar), so a path variable
# or query parameter can carry them.
STRING_WKT = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
    }
)
WRAPPERS = frozenset(
    {
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
)


def descriptor_of(message: Message) -> Descriptor:
    """The descriptor of ``message`` (the upb and pure-Python descriptors share one API)."""
    return cast(Descriptor, message.DESCRIPTOR)


def message_of(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    if field.message_type is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return field.message_type


def enum_of(field: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field."""
    if field.enum_type is None:
        raise TypeError(f"{field.full_name} is not an enum field")
    return field.enum_type


def is_map(field: FieldDescriptor) -> bool:
    """Whether ``field`` is a ``map<K, V>``."""
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def is_repeated(field: FieldDescriptor) -> bool:
    """Whether ``field`` is a repeated field (maps included)."""
    return bool(field.is_repeated)


def is_scalar_like(field: FieldDescriptor) -> bool:
    """Whether a single string can set ``field``: a scalar, an enum, or a string-form WKT."""
    if field.message_type is None:
        return True
    name = field.message_type.full_name
    return name in STRING_WKT or name in WRAPPERS


def lookup(message: Descriptor, name: str, *, json_names: bool) -> FieldDescriptor | None:
    """The field called ``name`` (its proto name, or also its JSON name when ``json_names``)."""
    field = message.fields_by_name.get(name)
    if field is None and json_names:
        for candidate in message.fields:
            if candidate.json_name == name:
                return candidate
    return field


def resolve(message: Descriptor, path: str, *, json_names: bool = False) -> list[FieldDescriptor]:
    """The chain of fields a dotted path walks; ``KeyError`` naming the first unknown part.

    Every part but the last must be a singular message field.
    """
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for part in path.split("."):
        if current is None:
            raise KeyError(f"{'.'.join(f.name for f in chain)} is not a message")
        field = lookup(current, part, json_names=json_names)
        if field is None:
            raise KeyError(f"{current.full_name} has no field {part!r}")
        chain.append(field)
        nested = field.type == FieldDescriptor.TYPE_MESSAGE and not is_repeated(field)
        current = field.message_type if nested else None
    return chain
