"""REST fixtures and helpers: stacks serving REST, an HTTP client on them, readers for NDJSON
and SSE streams, and a test-side encoder of a request message into an HTTP request (written
independently of the gateway's transcoder, so the two check each other).

A test module imports the fixtures it uses and names them in ``__all__``, so that linters
count them as used (pytest finds fixtures in the module's namespace).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from pymongo import AsyncMongoClient

from genhub.gateway.rest.bindings import Binding
from tests.support import infra
from tests.support.stack import Stack, start_stack


@pytest.fixture
async def rest_stack(vhost: str, database: str) -> AsyncIterator[Stack]:
    """A stack (demo worker, concurrency 4) whose gateway also serves REST."""
    async with start_stack(vhost, database, rest=True) as running:
        yield running


@pytest.fixture
async def rest_single(vhost: str, database: str) -> AsyncIterator[Stack]:
    """A REST stack whose worker runs one task at a time, so later tasks wait in the queue."""
    async with start_stack(vhost, database, rest=True, concurrency=1) as running:
        yield running


@pytest.fixture(scope="module")
async def shared_rest_stack(infrastructure: None) -> AsyncIterator[Stack]:
    """One REST stack for a whole module (its own vhost and database, removed afterwards), for
    tables of many cheap cases."""
    name = "t" + secrets.token_hex(5)
    await infra.create_vhost(name)
    try:
        async with start_stack(name, name, rest=True) as running:
            yield running
    finally:
        await infra.delete_vhost(name)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.MONGO_URL)
        await mongo.drop_database(name)
        await mongo.close()


@pytest.fixture
async def http(rest_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on ``rest_stack``'s REST server."""
    async with client(rest_stack) as opened:
        yield opened


def client(stack: Stack) -> httpx.AsyncClient:
    """An HTTP client on ``stack``'s REST server (use as ``async with``)."""
    assert stack.rest_url, "start the stack with rest=True"
    return httpx.AsyncClient(base_url=stack.rest_url, timeout=30)


def ndjson(text: str) -> list[dict[str, Any]]:
    """The objects of a newline-delimited JSON body."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Event:
    """One Server-Sent Event."""

    event: str
    data: str

    def json(self) -> Any:
        """The data, parsed."""
        return json.loads(self.data)


@dataclass
class SseParser:
    """Splits a ``text/event-stream`` body, fed in arbitrary chunks, into events."""

    buffer: str = ""
    comments: int = 0
    events: list[Event] = field(default_factory=list)

    def feed(self, chunk: str) -> list[Event]:
        """Add ``chunk``; returns the events it completed."""
        self.buffer += chunk.replace("\r\n", "\n")
        done: list[Event] = []
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            name, data = "message", []
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                elif line.startswith("event:"):
                    name = line[len("event:") :].strip()
                elif line.startswith("data:"):
                    data.append(line[len("data:") :].lstrip())
            if data:
                done.append(Event(name, "\n".join(data)))
        self.events += done
        return done


@dataclass(frozen=True)
class HttpCall:
    """An HTTP request equivalent to a gRPC request under one binding."""

    method: str
    path: str
    params: list[tuple[str, str]]
    body: Any | None


def encode_http(binding: Binding, request: Message) -> HttpCall:
    """How a client would send ``request`` to ``binding``: path variables from its fields, the
    body by the rule (``*`` or one field, as proto3 JSON), every other set field in the query."""
    as_json = json_format.MessageToDict(request, preserving_proto_field_name=True)
    path = binding.template.template
    bound: set[str] = set()
    for variable in binding.template.variables:
        value: Any = as_json
        for part in variable.field_path.split("."):
            value = value[part]
        path = path.replace("{" + variable.field_path + "}", quote(str(value), safe=""))
        bound.add(variable.field_path)
    body: Any | None = None
    if binding.body == "*":
        body = json_format.MessageToDict(request)
    elif binding.body:
        body = json_format.MessageToDict(getattr(request, binding.body))
    params: list[tuple[str, str]] = []
    if binding.body != "*":
        skip = bound | ({binding.body} if binding.body else set())
        params = [
            (k, v)
            for k, v in _flatten(as_json, "")
            if not any(k == s or k.startswith(s + ".") for s in skip)
        ]
    return HttpCall(binding.http_method, path, params, body)


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item, prefix)
    elif isinstance(value, bool):
        yield prefix, "true" if value else "false"
    else:
        yield prefix, str(value)


async def send(http: httpx.AsyncClient, call: HttpCall, **kwargs: Any) -> httpx.Response:
    """Send ``call``."""
    return await http.request(
        call.method,
        call.path,
        params=tuple(call.params),
        json=call.body if call.body is not None else None,
        **kwargs,
    )
