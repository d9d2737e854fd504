"""REST request -> gRPC request message, gRPC response message -> JSON, by grpc-gateway's rules:
the body (``*`` or one field) first, then path variables over it, then query parameters for the
fields neither binds; JSON both ways as ``google.protobuf.json_format`` maps it.

Every input goes through one strict decoding step: the body through ``strict_json`` (UTF-8,
duplicate keys, non-finite tokens, depth), every JSON value (body, path, query) through
``proto_json`` (what proto3 JSON accepts per field kind), and only then ``json_format.ParseDict``
(ignore_unknown_fields=False). Each problem is a BadRequest field violation; all of a request's
problems are answered together in one 400.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from genhub.common.errors import FieldViolation
from genhub.gateway.rest import fields, proto_json, query, strict_json
from genhub.gateway.rest.bindings import Binding
from genhub.gateway.rest.errors import RestError

BODY = "body"
_MAP_KEY = re.compile(r"^(?P<field>[^\[\]]+)\[(?P<key>[^\[\]]*)\]$")
_PARSE_CHAIN = re.compile(r"Failed to parse (\S+) field")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)"')
_PARSE_PREFIX = re.compile(r"Failed to parse \S+ field: ")
_AT_SUFFIX = re.compile(r"\s+at\s+\S+$")
_JSON_WHITESPACE = b" \t\r\n"


def build_request(
    binding: Binding,
    path_values: dict[str, str],
    query_params: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    """The request message for ``binding``: ``body`` (bytes as received, already decoded from
    any content coding), ``path_values`` (percent-decoded) and ``query_params`` (see
    ``query.parse``). ``RestError`` (400) with a BadRequest listing every bad input otherwise:
    fields by their path as the client spelled them, ``body`` for a body that is not a JSON
    object, the parameter name for a query parameter no field takes."""
    request = binding.request_class()
    descriptor = fields.descriptor_of(request)
    violations = _merge_body(request, descriptor, binding.body, body) if binding.body else []
    bound: dict[str, Any] = {}
    chains = {path: fields.resolve(descriptor, path) for path in path_values}
    for path, text in path_values.items():
        _bind_text(bound, chains[path], path, text, violations)
    excluded = set(path_values) | ({binding.body} if binding.body else set())
    for key, text in query_params:
        _add_query_value(bound, descriptor, binding.body, key, text, excluded, violations)
    if not violations and bound:
        # Each value was checked alone; this catches what only shows together (two members
        # of one oneof).
        violations += proto_json.check_message(descriptor, bound)
    if violations:
        raise RestError.invalid(violations)
    if bound:
        extra = binding.request_class()
        _parse_dict(bound, extra, "query")
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


def _merge_body(
    request: Message, descriptor: Descriptor, body_field: str, raw: bytes
) -> list[FieldViolation]:
    if not raw.strip(_JSON_WHITESPACE):
        return []  # no body: an empty message, so POST :cancel needs none
    try:
        data = strict_json.loads(raw)
    except strict_json.JsonSyntaxError as exc:
        return [FieldViolation(BODY, str(exc))]
    if body_field == "*":
        if not isinstance(data, dict):
            return [FieldViolation(BODY, f"must be a JSON object, not {proto_json.echo(data)}")]
        violations = proto_json.check_message(descriptor, data)
        target: dict[str, Any] = data
    else:
        field = descriptor.fields_by_name[body_field]
        if data is None:
            return [FieldViolation(BODY, "must not be null")]
        violations = proto_json.check_field(field, data, field.json_name)
        target = {field.json_name: data}
    if violations:
        return violations
    _parse_dict(target, request, body_field)
    return []


def _parse_dict(data: dict[str, Any], message: Message, fallback_field: str) -> None:
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except (json_format.ParseError, TypeError, ValueError, RecursionError) as exc:
        # proto_json refuses everything json_format does; this only guards against a gap.
        raise _parse_failure(exc, fallback_field) from None


def _bind_text(
    bound: dict[str, Any],
    chain: list[FieldDescriptor],
    name: str,
    text: str,
    violations: list[FieldViolation],
) -> None:
    leaf = chain[-1]
    try:
        value = query.text_value(leaf, text)
    except ValueError as exc:
        violations.append(FieldViolation(name, str(exc)))
        return
    if problems := proto_json.check_element(leaf, value, name):
        violations += problems
        return
    if fields.is_repeated(leaf):
        items = _container(bound, chain, [], name, violations)
        if items is not None:
            items.append(value)
        return
    parent = _parent(bound, chain, name, violations)
    if parent is None:
        return
    if leaf.json_name in parent:
        violations.append(FieldViolation(name, "is given more than once"))
        return
    parent[leaf.json_name] = value


def _add_query_value(
    bound: dict[str, Any],
    message: Descriptor,
    body_field: str,
    key: str,
    text: str,
    excluded: set[str],
    violations: list[FieldViolation],
) -> None:
    name = key
    if body_field == "*":
        violations.append(
            FieldViolation(name, "cannot be set in the query: this route reads the request body")
        )
        return
    map_key: str | None = None
    if found := _MAP_KEY.match(key):
        key, map_key = found.group("field"), found.group("key")
    try:
        chain = fields.resolve(message, key, json_names=True)
    except KeyError:
        violations.append(FieldViolation(name, "is not a field of this request"))
        return
    proto_path = ".".join(f.name for f in chain)
    for bound_path in excluded:
        if proto_path == bound_path or proto_path.startswith(bound_path + "."):
            where = "the request body" if bound_path == body_field else "the URL path"
            violations.append(FieldViolation(name, f"is already set by {where}"))
            return
    leaf = chain[-1]
    if fields.is_map(leaf):
        if map_key is None:
            violations.append(FieldViolation(name, "set map entries as name[key]=value"))
            return
        entry = fields.message_of(leaf)
        key_problems = proto_json.check_map_key(entry.fields_by_name["key"], map_key, name)
        value_field = entry.fields_by_name["value"]
        if key_problems or not fields.is_scalar_like(value_field):
            violations += key_problems or [
                FieldViolation(name, "map values that are messages cannot be set in the query")
            ]
            return
        entries = _container(bound, chain, {}, name, violations)
        if entries is None:
            return
        if map_key in entries:
            violations.append(FieldViolation(name, "is given more than once"))
            return
        try:
            value = query.text_value(value_field, text)
        except ValueError as exc:
            violations.append(FieldViolation(name, str(exc)))
            return
        if problems := proto_json.check_element(value_field, value, name):
            violations += problems
            return
        entries[map_key] = value
        return
    if map_key is not None:
        violations.append(FieldViolation(name, "is not a map field"))
    elif not fields.is_scalar_like(leaf):
        what = "repeated messages" if fields.is_repeated(leaf) else "a message"
        violations.append(
            FieldViolation(name, f"{what} cannot be set in the query; name its fields")
        )
    else:
        _bind_text(bound, chain, name, text, violations)


def _parent(
    bound: dict[str, Any],
    chain: Sequence[FieldDescriptor],
    name: str,
    violations: list[FieldViolation],
) -> dict[str, Any] | None:
    node = bound
    for field in chain[:-1]:
        child = node.setdefault(field.json_name, {})
        if not isinstance(child, dict):
            violations.append(FieldViolation(name, "conflicts with another parameter"))
            return None
        node = child
    return node


def _container(
    bound: dict[str, Any],
    chain: Sequence[FieldDescriptor],
    empty: Any,
    name: str,
    violations: list[FieldViolation],
) -> Any:
    parent = _parent(bound, chain, name, violations)
    if parent is None:
        return None
    container = parent.setdefault(chain[-1].json_name, empty)
    if type(container) is not type(empty):
        violations.append(FieldViolation(name, "conflicts with another parameter"))
        return None
    return container


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
    lowerCamelCase names, enum names, 64-bit integers as strings, and fields at their default
    value left out, as the proto3 JSON mapping prints by default (a missing key reads as
    ``0``, ``""``, ``false``, ``[]`` or ``{}``; see docs/rest.md, "JSON")."""
    if binding.response_body:
        field = fields.descriptor_of(response).fields_by_name[binding.response_body]
        if field.type == FieldDescriptor.TYPE_MESSAGE and not fields.is_repeated(field):
            return to_json(getattr(response, field.name))
        return to_json(response).get(field.json_name)
    return to_json(response)


def to_json(message: Message) -> Any:
    """``message`` in proto3 JSON, as ``render`` prints it."""
    # Defaults are left out (the mapping's default, and Google's REST APIs'), not printed as
    # grpc-gateway v2 does: printing them made a page of 20 image tasks 27 KB, a third of it
    # empty strings and zeros. Any proto3 JSON parser reads both forms as the same message.
    return json_format.MessageToDict(message)
