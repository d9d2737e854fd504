"""How a task is laid out in MongoDB, and the conversions both ways.

Indexed and filtered fields are top-level scalars (enums stored as lowercase names for people
reading the collection); the typed spec, result, usage and error are stored as proto3 JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from genhub.taskstore import states
from genhub.v1 import task_pb2

TYPE_NAMES = {
    task_pb2.TASK_TYPE_IMAGE: "image",
    task_pb2.TASK_TYPE_VIDEO: "video",
    task_pb2.TASK_TYPE_TEXT: "text",
}
TYPE_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}
PRIORITY_NAMES = {
    task_pb2.PRIORITY_LOW: "low",
    task_pb2.PRIORITY_DEFAULT: "default",
    task_pb2.PRIORITY_CRITICAL: "critical",
}
PRIORITY_BY_NAME = {v: k for k, v in PRIORITY_NAMES.items()}


def now() -> datetime:
    """Current UTC time at MongoDB's (millisecond) precision."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def prompt_text(task: task_pb2.Task) -> str:
    """The text a prompt search looks in."""
    kind = task.WhichOneof("spec")
    if kind == "image":
        return task.image.prompt
    if kind == "video":
        return task.video.prompt
    if kind == "text":
        return task.text.prompt or "\n".join(m.content for m in task.text.messages)
    return ""


def dedupe_key(task: task_pb2.Task) -> str:
    """Unique per (user, idempotency key); the task id itself when no key was given, so the
    unique index needs no sparse/partial support (FerretDB has neither)."""
    if task.idempotency_key:
        return f"key:{task.user_id}:{task.idempotency_key}"
    return f"id:{task.task_id}"


def route(doc: dict[str, Any]) -> tuple[str, str]:
    """The (provider, model) serving a stored task: the requested ones unless a circuit breaker
    re-routed it to a fallback (``served_by``). Its queue messages go to that provider."""
    served = doc.get("served_by") or {}
    return served.get("provider") or doc["provider"], served.get("model") or doc["model"]


def to_document(task: task_pb2.Task) -> dict[str, Any]:
    """What a new task's document holds from the request; ``lifecycle.new_document`` adds the
    lifecycle fields (status, attempts, run, lease, outbox, times)."""
    kind = task.WhichOneof("spec")
    return {
        "_id": task.task_id,
        "user_id": task.user_id,
        "idempotency_key": task.idempotency_key,
        "dedupe_key": dedupe_key(task),
        "type": TYPE_NAMES[task.type],
        "provider": task.provider,
        "model": task.model,
        "priority": PRIORITY_NAMES.get(task.priority, "default"),
        "spec_kind": kind,
        "spec": _dict(getattr(task, kind)) if kind else {},
        "prompt": prompt_text(task),
        "labels": dict(task.labels),
        "error": None,
        "result": None,
        "usage": None,
        "provider_job_id": "",
        "request_credentials": task.request_credentials,
        "webhook": _dict(task.webhook) if task.HasField("webhook") else None,
        "fallbacks": [{"provider": f.provider, "model": f.model} for f in task.fallbacks],
        "served_by": None,
        "started_at": None,
        "finished_at": None,
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INTEGERS = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_SFIXED32,
    }
)


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    # Integer arithmetic: FromDatetime goes through timetuples and is ten times slower.
    ts.FromMicroseconds((moment - _EPOCH) // _MICROSECOND)
    return ts


def _fields(descriptor: Descriptor, data: dict[str, Any]) -> dict[str, Any] | None:
    """Constructor arguments for a message stored by :func:`as_dict`, or None when it holds
    something this fast path does not read (then json_format's parser does)."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            return None
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            nested = field.message_type
            if nested is None or nested.GetOptions().map_entry:
                return None
            if nested.full_name.startswith("google.protobuf."):
                return None  # well-known types have their own JSON forms
            items = value if isinstance(value, list) else [value]
            parsed = [_fields(nested, item) for item in items]
            if any(p is None for p in parsed):
                return None
            out[name] = parsed if isinstance(value, list) else parsed[0]
        elif field.type in _INTEGERS:
            # proto3 JSON writes 64-bit integers as strings.
            out[name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            if isinstance(value, str | list):
                return None  # "NaN", "Infinity": rare, left to json_format
            out[name] = value
        elif field.type == FieldDescriptor.TYPE_BYTES:
            return None
        else:
            out[name] = value  # strings, bools, enums by name (constructors take names)
    return out


def parse_stored(data: dict[str, Any], message: Any) -> None:
    """Fill ``message`` from a dict written by :func:`as_dict` (proto3 JSON with proto field
    names). Messages built from keyword arguments parse about ten times faster than with
    ``json_format.ParseDict``, which remains the path for anything unusual."""
    fields = _fields(message.DESCRIPTOR, data)
    if fields is None:
        json_format.ParseDict(data, message)
        return
    message.MergeFrom(type(message)(**fields))


def from_document(doc: dict[str, Any]) -> task_pb2.Task:
    """The API view of a stored task."""
    task = task_pb2.Task(
        task_id=doc["_id"],
        user_id=doc.get("user_id", ""),
        idempotency_key=doc.get("idempotency_key", ""),
        type=TYPE_BY_NAME.get(doc.get("type", ""), task_pb2.TASK_TYPE_UNSPECIFIED),
        provider=doc.get("provider", ""),
        model=doc.get("model", ""),
        priority=PRIORITY_BY_NAME.get(doc.get("priority", ""), task_pb2.PRIORITY_DEFAULT),
        status=states.BY_NAME[doc["status"]],
        attempts=int(doc.get("attempts", 0)),
        labels=doc.get("labels") or {},
        provider_job_id=doc.get("provider_job_id", ""),
        request_credentials=bool(doc.get("request_credentials", False)),
    )
    kind = doc.get("spec_kind")
    if kind:
        parse_stored(doc.get("spec") or {}, getattr(task, kind))
    for key in ("error", "result", "usage", "webhook"):
        if doc.get(key):
            parse_stored(doc[key], getattr(task, key))
    for fallback in doc.get("fallbacks") or ():
        task.fallbacks.add(provider=fallback["provider"], model=fallback["model"])
    if "provider" in doc:
        provider, model = route(doc)
        task.served_by.provider, task.served_by.model = provider, model
    for field, key in (
        ("create_time", "created_at"),
        ("update_time", "updated_at"),
        ("start_time", "started_at"),
        ("finish_time", "finished_at"),
    ):
        ts = _timestamp(doc.get(key))
        if ts is not None:
            getattr(task, field).CopyFrom(ts)
    return task


def as_dict(message: Any) -> dict[str, Any]:
    """A message as stored (proto3 JSON with field names as in the proto)."""
    return _dict(message)
