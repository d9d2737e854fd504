"""The OpenAPI 3.0 document of the REST API, generated from the same bindings and message
descriptors the dispatcher serves: proto3 JSON names, enums by name, 64-bit integers as strings,
grpc-gateway's error shape, 202 for task creation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from genhub.gateway.rest import fields
from genhub.gateway.rest.bindings import Binding
from genhub.gateway.rest.streaming import EVENT_STREAM, NDJSON

OPENAPI_VERSION = "3.0.3"
STATUS = "google.rpc.Status"
ANY = "google.protobuf.Any"
_REF = "#/components/schemas/"
_MAX_QUERY_DEPTH = 4
_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]{1,12}(\.[0-9]{1,9})?s$",
        "example": "1.5s",
    },
    "google.protobuf.FieldMask": {"type": "string", "example": "email,displayName"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
}
_WRAPPED_TYPE = {
    "google.protobuf.DoubleValue": FieldDescriptor.TYPE_DOUBLE,
    "google.protobuf.FloatValue": FieldDescriptor.TYPE_FLOAT,
    "google.protobuf.Int64Value": FieldDescriptor.TYPE_INT64,
    "google.protobuf.UInt64Value": FieldDescriptor.TYPE_UINT64,
    "google.protobuf.Int32Value": FieldDescriptor.TYPE_INT32,
    "google.protobuf.UInt32Value": FieldDescriptor.TYPE_UINT32,
    "google.protobuf.BoolValue": FieldDescriptor.TYPE_BOOL,
    "google.protobuf.StringValue": FieldDescriptor.TYPE_STRING,
    "google.protobuf.BytesValue": FieldDescriptor.TYPE_BYTES,
}
_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request id: the client's X-Request-Id, or one the gateway made.",
        "schema": {"type": "string"},
    },
    "X-Gateway-Overhead-Ms": {
        "description": "Milliseconds the REST layer spent on the request outside the gRPC call.",
        "schema": {"type": "string"},
    },
    "Server-Timing": {
        "description": "`gateway;dur=<ms>, grpc;dur=<ms>`: REST overhead and gRPC call time.",
        "schema": {"type": "string"},
    },
}
_DESCRIPTION = """\
REST/JSON transcoding of GenHub's gRPC API (grpc-gateway rules), generated from the
`google.api.http` options of the protos.

* JSON is proto3 JSON: lowerCamelCase names (snake_case accepted on input), enums by name
  (numbers accepted on input), 64-bit integers as strings, Timestamps in RFC 3339,
  Durations as `"1.5s"`. Unknown body fields are rejected.
* Fields a route binds neither in its path nor in its body are query parameters
  (`a.b=1` for nested fields, `x=1&x=2` for repeated ones, `m[key]=v` for maps).
* Errors are `{"code": <gRPC code>, "message": ..., "details": [Any...]}` with
  grpc-gateway's HTTP status for the code (400, 404, 409, 501, ...).
* Task creation answers `202 Accepted` with `Location` (the status URL) and `Link`
  (`rel="status"`, `rel="cancel"`, `rel="watch"`).
* Headers passed to the gRPC call as metadata: `Authorization`, `Idempotency-Key`,
  `X-Request-Id`, `Grpc-Metadata-<key>`; `Grpc-Timeout` sets the deadline.
* Every response carries `X-Request-Id`, `X-Gateway-Overhead-Ms` and `Server-Timing`.
"""


def field_behaviors(field: FieldDescriptor) -> set[int]:
    """The ``google.api.field_behavior`` values of ``field``."""
    options = field.GetOptions()
    extension: Any = field_behavior_pb2.field_behavior
    return set(options.Extensions[extension])


class _Schemas:
    """Component schemas, collected as messages and enums are referenced."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, name: str) -> dict[str, str]:
        return {"$ref": _REF + name}

    def message(self, message: Descriptor) -> dict[str, Any]:
        """A schema for ``message``: a ``$ref`` (or the WKT's JSON form)."""
        name = message.full_name
        if name in _WKT:
            return dict(_WKT[name])
        if name in _WRAPPED_TYPE:
            return {**_SCALARS[_WRAPPED_TYPE[name]], "nullable": True}
        if name == ANY:
            return self.ref(ANY)
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages refer to themselves
            self.components[name] = self._object(message)
        return self.ref(name)

    def enum(self, enum: EnumDescriptor) -> dict[str, Any]:
        """A ``$ref`` to a string schema listing the enum's value names."""
        if enum.full_name not in self.components:
            self.components[enum.full_name] = {
                "type": "string",
                "enum": [value.name for value in enum.values],
            }
        return self.ref(enum.full_name)

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        """A schema for one field's JSON value."""
        if fields.is_map(field):
            value = fields.message_of(field).fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        if fields.is_repeated(field):
            return {"type": "array", "items": self._single(field)}
        return self._single(field)

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return self.message(fields.message_of(field))
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(fields.enum_of(field))
        return dict(_SCALARS[field.type])

    def _object(self, message: Descriptor, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in message.fields:
            if field.name in skip:
                continue
            prop = self.field(field)
            behaviors = field_behaviors(field)
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                # Keywords beside a $ref are ignored in OpenAPI 3.0, hence the allOf.
                prop = {"allOf": [prop]} if "$ref" in prop else prop
                prop["readOnly"] = True
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(field.json_name)
            oneof = field.containing_oneof
            # proto3 `optional` fields sit in a synthetic one-field oneof named `_<field>`.
            if oneof is not None and oneof.name != f"_{field.name}":
                prop = _describe(prop, f"One of `{oneof.name}`: set at most one.")
            properties[field.json_name] = prop
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema

    def body_without(self, message: Descriptor, bound: frozenset[str]) -> dict[str, Any]:
        """The request message's schema minus the fields the path binds (``body: "*"``)."""
        if not bound:
            return self.message(message)
        return self._object(message, skip=bound)


def _describe(schema: dict[str, Any], text: str) -> dict[str, Any]:
    if "$ref" in schema:
        return {"allOf": [schema], "description": text}
    return {**schema, "description": text}


def _display_names(group: Sequence[Binding]) -> dict[str, dict[str, str]]:
    """Per binding, field path -> the parameter name shown in the OpenAPI path.

    Templates that differ only in variable names (``/users/{user_id}`` and
    ``/users/{user.user_id}``) are one OpenAPI path, so their variables share names by
    position: the first binding's last field-path components, made unique.
    """
    first = group[0].template.variables
    names: list[str] = []
    for variable in first:
        name = variable.field_path.rsplit(".", 1)[-1]
        names.append(name if name not in names else variable.field_path.replace(".", "_"))
    return {
        b.operation_id: {v.field_path: names[i] for i, v in enumerate(b.template.variables)}
        for b in group
    }


class _Builder:
    def __init__(self, bindings: Sequence[Binding]) -> None:
        self.bindings = list(bindings)
        self.schemas = _Schemas()
        self.schemas.components[ANY] = {
            "type": "object",
            "description": "A message of the type `@type` names, with its fields inline.",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": True,
        }
        self.schemas.components[STATUS] = {
            "type": "object",
            "description": "An error: the gRPC code, a message, and google.rpc details.",
            "properties": {
                "code": {**_INT32, "description": "gRPC status code (google.rpc.Code)."},
                "message": {"type": "string"},
                "details": {"type": "array", "items": self.schemas.ref(ANY)},
            },
            "required": ["code", "message", "details"],
            "additionalProperties": False,
        }

    def document(self, title: str, version: str) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        groups: dict[tuple[str, ...], list[Binding]] = {}
        for binding in self.bindings:
            groups.setdefault(binding.template.shape(), []).append(binding)
        for group in groups.values():
            names = _display_names(group)
            path = group[0].template.openapi_path(names[group[0].operation_id])
            item = paths.setdefault(path, {})
            for binding in group:
                verb = binding.http_method.lower()
                if verb in item:
                    raise ValueError(f"two bindings for {binding.http_method} {path}")
                item[verb] = self.operation(binding, names[binding.operation_id])
        services = list(
            {
                b.method.containing_service.full_name: b.method.containing_service
                for b in self.bindings
            }.values()
        )
        return {
            "openapi": OPENAPI_VERSION,
            "info": {"title": title, "version": version, "description": _DESCRIPTION},
            "tags": [
                {"name": s.name, "description": f"gRPC service `{s.full_name}`."} for s in services
            ],
            "paths": paths,
            "components": {
                "schemas": dict(sorted(self.schemas.components.items())),
                "headers": _HEADERS,
                "responses": {
                    "Error": {
                        "description": "An error, in grpc-gateway's shape.",
                        "headers": self._common_headers(),
                        "content": {"application/json": {"schema": self.schemas.ref(STATUS)}},
                    }
                },
            },
        }

    def _common_headers(self) -> dict[str, Any]:
        return {name: {"$ref": f"#/components/headers/{name}"} for name in _HEADERS}

    def operation(self, binding: Binding, names: dict[str, str]) -> dict[str, Any]:
        method = binding.method
        request = method.input_type
        bound = {v.field_path for v in binding.template.variables}
        parameters = [
            self._path_parameter(binding, v.field_path, names) for v in binding.template.variables
        ]
        if binding.body != "*":
            excluded = bound | ({binding.body} if binding.body else set())
            parameters += self._query_parameters(request, "", "", excluded, depth=0)
        if "idempotency_key" in request.fields_by_name:
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Fills `idempotencyKey` when the body does not set it.",
                    "schema": {"type": "string", "maxLength": 128},
                }
            )
        operation: dict[str, Any] = {
            "operationId": binding.operation_id,
            "tags": [method.containing_service.name],
            "summary": method.name,
            "description": f"gRPC `{method.containing_service.full_name}/{method.name}`.",
            "responses": self._responses(binding),
        }
        if parameters:
            operation["parameters"] = parameters
        if binding.body:
            operation["requestBody"] = self._request_body(binding, bound)
        return operation

    def _path_parameter(self, binding: Binding, path: str, names: dict[str, str]) -> Any:
        leaf = fields.resolve(binding.method.input_type, path)[-1]
        parameter: dict[str, Any] = {
            "name": names[path],
            "in": "path",
            "required": True,
            "schema": self.schemas.field(leaf),
        }
        if names[path] != path:
            parameter["description"] = f"Sets the request field `{path}`."
        return parameter

    def _query_parameters(
        self, message: Descriptor, prefix: str, proto_prefix: str, excluded: set[str], depth: int
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for field in message.fields:
            proto_path = proto_prefix + field.name
            if proto_path in excluded or fields.is_map(field):
                continue
            name = prefix + field.json_name
            if fields.is_scalar_like(field):
                parameter: dict[str, Any] = {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": self.schemas.field(field),
                }
                if fields.is_repeated(field):
                    parameter.update(style="form", explode=True)
                out.append(parameter)
            elif not fields.is_repeated(field) and depth < _MAX_QUERY_DEPTH:
                out += self._query_parameters(
                    fields.message_of(field), name + ".", proto_path + ".", excluded, depth + 1
                )
        return out

    def _request_body(self, binding: Binding, bound: set[str]) -> dict[str, Any]:
        request = binding.method.input_type
        if binding.body == "*":
            top_level = frozenset(p for p in bound if "." not in p)
            schema = self.schemas.body_without(request, top_level)
            remaining = [f for f in request.fields if f.name not in top_level]
        else:
            field = request.fields_by_name[binding.body]
            schema = self.schemas.field(field)
            remaining = [field]
        return {
            "required": bool(remaining),
            "content": {"application/json": {"schema": schema}},
        }

    def _responses(self, binding: Binding) -> dict[str, Any]:
        output = binding.method.output_type
        if binding.response_body:
            schema = self.schemas.field(output.fields_by_name[binding.response_body])
        else:
            schema = self.schemas.message(output)
        headers = self._common_headers()
        if binding.streaming:
            chunk = {
                "type": "object",
                "properties": {"result": schema, "error": self.schemas.ref(STATUS)},
                "additionalProperties": False,
            }
            ok = {
                "description": (
                    f'A stream: one `{{"result": ...}}` line per message ({NDJSON}), or '
                    f"`result`/`error`/`end` events with `Accept: {EVENT_STREAM}`."
                ),
                "headers": headers,
                "content": {
                    NDJSON: {"schema": chunk},
                    EVENT_STREAM: {"schema": {"type": "string"}},
                },
            }
            return {"200": ok, "default": {"$ref": "#/components/responses/Error"}}
        if binding.creates_task:
            link = 'Status, cancel and watch URLs: `rel="status"`, `"cancel"`, `"watch"`.'
            accepted = {
                "description": "Accepted: the task, queued (or finished, if `wait` allowed).",
                "headers": {
                    **headers,
                    "Location": {
                        "description": "The task's status URL (GetTask).",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    "Link": {"description": link, "required": True, "schema": {"type": "string"}},
                },
                "content": {"application/json": {"schema": schema}},
            }
            return {"202": accepted, "default": {"$ref": "#/components/responses/Error"}}
        ok = {
            "description": "OK",
            "headers": headers,
            "content": {"application/json": {"schema": schema}},
        }
        return {"200": ok, "default": {"$ref": "#/components/responses/Error"}}


def build_document(
    bindings: Sequence[Binding], *, title: str = "GenHub API", version: str = "v1"
) -> dict[str, Any]:
    """The OpenAPI document for ``bindings``."""
    return _Builder(bindings).document(title, version)
