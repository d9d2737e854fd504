"""REST request -> gRPC request message, gRPC response message -> JSON, by grpc-gateway's rules:
the body (``*`` or one field) first, then path variables over it, then query parameters for the
fields neither binds; JSON both ways as ``google.protobuf.json_format`` maps it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from genhub.gateway.rest import fields
from genhub.gateway.rest.bindings import Binding
from genhub.gateway.rest.errors import RestError

_MAP_KEY = re.compile(r"^(?P<field>[^\[\]]+)\[(?P<key>[^\[\]]*)\]$")
_PARSE_CHAIN = re.compile(r"Failed to parse (\S+) field")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)"')
_PARSE_PREFIX = re.compile(r"Failed to parse \S+ field: ")
_AT_SUFFIX = re.compile(r"\s+at\s+\S+$")
# The spellings Go's strconv.ParseBool (and so grpc-gateway) accepts, case-insensitively.
_BOOLS = {
    "true": True,
    "t": True,
    "1": True,
    "false": False,
    "f": False,
    "0": False,
}
_MAX_JSON_DEPTH = 100


def build_request(
    binding: Binding,
    path_values: dict[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    """The request message for ``binding``; ``RestError`` (400) naming the bad input."""
    request = binding.request_class()
    if binding.body:
        _merge_body(request, binding.body, body)
    descriptor = fields.descriptor_of(request)
    bound: dict[str, Any] = {}
    chains = {path: fields.resolve(descriptor, path) for path in path_values}
    for path, value in path_values.items():
        _put(bound, chains[path], _scalar_json(chains[path][-1], value, path), path)
    if binding.body != "*":
        excluded = set(path_values) | ({binding.body} if binding.body else set())
        for key, value in query:
            _add_query_value(bound, descriptor, key, value, excluded)
    if bound:
        extra = binding.request_class()
        try:
            json_format.ParseDict(bound, extra)
        except (json_format.ParseError, TypeError, ValueError) as exc:
            raise _parse_failure(exc, "query") from None
        request.MergeFrom(extra)
        # Path variables override the body, as in grpc-gateway; MergeFrom alone would keep the
        # body's value when the path's is a zero value.
        for chain in chains.values():
            _copy_leaf(extra, request, chain)
    return request


def _copy_leaf(source: Message, target: Message, chain: list[FieldDescriptor]) -> None:
    for field in chain[:-1]:
        source, target = getattr(source, field.name), getattr(target, field.name)
    leaf = chain[-1]
    if leaf.message_type is not None:
        getattr(target, leaf.name).CopyFrom(getattr(source, leaf.name))
    else:
        setattr(target, leaf.name, getattr(source, leaf.name))


def _merge_body(request: Message, body_field: str, raw: bytes) -> None:
    data = parse_json(raw) if raw.strip() else {}
    if body_field == "*":
        if not isinstance(data, dict):
            raise _invalid("the request body must be a JSON object")
        target: dict[str, Any] = data
    else:
        target = {fields.descriptor_of(request).fields_by_name[body_field].json_name: data}
    try:
        json_format.ParseDict(target, request, ignore_unknown_fields=False)
    except (json_format.ParseError, TypeError, ValueError, RecursionError) as exc:
        raise _parse_failure(exc, body_field) from None


def parse_json(raw: bytes) -> Any:
    """Strict JSON (no NaN/Infinity tokens, bounded nesting); ``RestError`` (400) otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("the request body is not UTF-8") from None

    def reject(token: str) -> Any:
        # json.loads takes NaN and Infinity by default; they are not JSON.
        raise ValueError(f"{token} is not JSON")

    try:
        data = json.loads(text, parse_constant=reject)
    except RecursionError:
        raise _invalid("the request body is nested too deeply") from None
    except ValueError as exc:
        raise _invalid(f"malformed JSON in the request body: {exc}") from None
    if _depth(data) > _MAX_JSON_DEPTH:
        raise _invalid("the request body is nested too deeply")
    return data


def _invalid(message: str) -> RestError:
    # No field to blame (the body is not JSON at all): INVALID_ARGUMENT without details.
    return RestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _add_query_value(
    bound: dict[str, Any],
    message: Descriptor,
    key: str,
    value: str,
    excluded: set[str],
) -> None:
    map_key: str | None = None
    if found := _MAP_KEY.match(key):
        key, map_key = found.group("field"), found.group("key")
    try:
        chain = fields.resolve(message, key, json_names=True)
    except KeyError:
        # grpc-gateway ignores parameters that name no field (cache busters, tracking tags).
        return
    proto_path = ".".join(f.name for f in chain)
    if any(proto_path == e or proto_path.startswith(e + ".") for e in excluded):
        return  # bound by the path or the body, which win
    leaf = chain[-1]
    if fields.is_map(leaf):
        if map_key is None:
            raise RestError.bad_request(key, "set map entries as name[key]=value")
        value_field = fields.message_of(leaf).fields_by_name["value"]
        entries = _container(bound, chain, {}, key)
        entries[map_key] = _scalar_json(value_field, value, key)
        return
    if map_key is not None:
        raise RestError.bad_request(key, "is not a map field")
    if fields.is_repeated(leaf):
        if not fields.is_scalar_like(leaf):
            raise RestError.bad_request(key, "repeated messages cannot be set in the query")
        items = _container(bound, chain, [], key)
        items.append(_scalar_json(leaf, value, key))
        return
    if not fields.is_scalar_like(leaf):
        raise RestError.bad_request(key, "a message cannot be set in the query; name its fields")
    _put(bound, chain, _scalar_json(leaf, value, key), key)


def _parent(bound: dict[str, Any], chain: list[FieldDescriptor], name: str) -> dict[str, Any]:
    node = bound
    for field in chain[:-1]:
        child = node.setdefault(field.json_name, {})
        if not isinstance(child, dict):
            raise RestError.bad_request(name, "conflicts with another parameter")
        node = child
    return node


def _put(bound: dict[str, Any], chain: list[FieldDescriptor], value: Any, name: str) -> None:
    parent = _parent(bound, chain, name)
    if chain[-1].json_name in parent:
        raise RestError.bad_request(name, "is given more than once")
    parent[chain[-1].json_name] = value


def _container(bound: dict[str, Any], chain: list[FieldDescriptor], empty: Any, name: str) -> Any:
    parent = _parent(bound, chain, name)
    container = parent.setdefault(chain[-1].json_name, empty)
    if type(container) is not type(empty):
        raise RestError.bad_request(name, "conflicts with another parameter")
    return container


def _scalar_json(field: FieldDescriptor, value: str, name: str) -> Any:
    """A path or query string as the JSON value ``json_format`` expects for ``field``."""
    wrapped = field
    if field.message_type is not None and field.message_type.full_name in fields.WRAPPERS:
        wrapped = field.message_type.fields_by_name["value"]
    if wrapped.type == FieldDescriptor.TYPE_BOOL:
        flag = _BOOLS.get(value.lower())
        if flag is None:
            raise RestError.bad_request(name, f"{value!r} is not a boolean (true or false)")
        return flag
    # Numbers, enums (name or number), bytes (base64) and string-form WKTs: json_format parses
    # these from strings and reports a bad one as a ParseError.
    return value


def _parse_failure(exc: BaseException, fallback_field: str) -> RestError:
    """A ``json_format`` failure as INVALID_ARGUMENT with a BadRequest naming the field.

    json_format reports nested failures as "Failed to parse a field: Failed to parse b field:
    <why> at Msg.a.b." and unknown keys as 'has no field named "x"'; the field path is the
    chain of names, the description the innermost reason.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    parts = _PARSE_CHAIN.findall(text)
    if unknown := _UNKNOWN_FIELD.search(text):
        parts.append(unknown.group(1))
        description = "is not a field of this message"
    else:
        reason = _PARSE_PREFIX.sub("", text).rstrip(".")
        description = _AT_SUFFIX.sub("", reason).rstrip(".") or "has a bad value"
    return RestError.bad_request(".".join(parts) or fallback_field, description)


def render(binding: Binding, response: Message) -> Any:
    """The JSON value of ``response`` (or of its ``response_body`` field): proto3 JSON with
    lowerCamelCase names, enum names, 64-bit integers as strings, every field without
    presence printed (so clients see ``0``, ``""``, ``[]`` rather than a missing key)."""
    if binding.response_body:
        field = fields.descriptor_of(response).fields_by_name[binding.response_body]
        if field.type == FieldDescriptor.TYPE_MESSAGE and not fields.is_repeated(field):
            return to_json(getattr(response, field.name))
        return to_json(response).get(field.json_name)
    return to_json(response)


def to_json(message: Message) -> Any:
    """``message`` in proto3 JSON, as ``render`` prints it."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
