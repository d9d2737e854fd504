"""HTTP headers -> gRPC metadata, and gRPC header metadata -> HTTP headers, as grpc-gateway
forwards them."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers

from genhub.gateway.rest.errors import RestError

# Forwarded under their own (lower-case) names, besides x-request-id; anything else only as
# Grpc-Metadata-<key>.
FORWARDED = ("authorization", "idempotency-key")
METADATA_PREFIX = "grpc-metadata-"
IDEMPOTENCY_HEADER = "idempotency-key"
REQUEST_ID_HEADER = "x-request-id"
TIMEOUT_HEADER = "grpc-timeout"
_KEY = re.compile(r"^[0-9a-z_.\-]+$")
_VALUE = re.compile(r"^[\x20-\x7e]*$")
# Names gRPC or HTTP/2 own; a client must not set them through Grpc-Metadata-*.
_RESERVED = frozenset({"content-type", "te", "user-agent", "host", "connection", "trailer"})
_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# The longest deadline a Grpc-Timeout sets. Eight digits of hours (the most the gRPC wire format
# allows) is about 11,000 years; grpc's deadline arithmetic (now + timeout, in int64
# nanoseconds) overflows from about 2,000,000H and the call then fails at once with
# DEADLINE_EXCEEDED. Larger values are capped, as gRPC core saturates a timeout it cannot hold
# rather than refusing it; a day is far beyond anything GenHub serves (a task's `wait` is at
# most 60 s), so the cap only ever replaces "effectively forever".
MAX_TIMEOUT_SECONDS = 24 * 3600.0
# Standard base64 alphabet, padding optional, as grpc-gateway decodes -bin headers (Go's
# StdEncoding, or RawStdEncoding when the length is not a multiple of 4).
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def usable_request_id(value: str | None) -> bool:
    """Whether a client's X-Request-Id can be passed on: 1-128 visible ASCII characters."""
    return value is not None and _REQUEST_ID.match(value) is not None


def outgoing_metadata(
    headers: Headers, request_id: str, client_host: str | None
) -> list[tuple[str, str | bytes]]:
    """The metadata a REST request's gRPC call carries; ``RestError`` (400) for a header gRPC
    cannot carry. ``x-request-id`` is always ``request_id`` (the client's or a generated one)."""
    metadata: list[tuple[str, str | bytes]] = [(REQUEST_ID_HEADER, request_id)]
    for name in FORWARDED:
        for value in headers.getlist(name):
            metadata.append((name, _ascii(name, value)))
    for name, value in headers.items():
        if not name.startswith(METADATA_PREFIX):
            continue
        key = name[len(METADATA_PREFIX) :]
        if not _KEY.match(key) or key.startswith("grpc-") or key in _RESERVED:
            raise RestError.bad_request(name, f"{key!r} cannot be sent as gRPC metadata")
        if key == REQUEST_ID_HEADER:
            continue  # the request id travels once, as decided above
        if key.endswith("-bin"):
            metadata.append((key, _binary(name, value)))
        else:
            metadata.append((key, _ascii(name, value)))
    if client_host:
        forwarded = headers.get("x-forwarded-for")
        chain = f"{forwarded}, {client_host}" if forwarded else client_host
        metadata.append(("x-forwarded-for", _ascii("x-forwarded-for", chain)))
    if host := headers.get("host"):
        metadata.append(("x-forwarded-host", _ascii("host", host)))
    return metadata


def _ascii(name: str, value: str) -> str:
    if not _VALUE.match(value):
        raise RestError.bad_request(name, "must be printable ASCII to travel as gRPC metadata")
    return value


def _binary(name: str, value: str) -> bytes:
    """A ``-bin`` header's value decoded from base64; ``RestError`` (400) naming ``name``
    otherwise. ``b64decode`` on its own skips characters outside the alphabet, so ``!!!``
    would pass as empty bytes: the value is checked against the alphabet first."""
    if _BASE64.match(value) and len(value.rstrip("=")) % 4 != 1:
        try:
            return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            pass  # misplaced padding ("QQQ==")
    raise RestError.bad_request(name, f"{value[:40]!r} is not base64 (standard alphabet)")


def timeout_seconds(headers: Headers) -> float | None:
    """The deadline a ``Grpc-Timeout`` header asks for (``10S``, ``500m``), at most
    ``MAX_TIMEOUT_SECONDS``; None without the header."""
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    found = _TIMEOUT.match(raw.strip())
    if found is None:
        raise RestError.bad_request("Grpc-Timeout", "must be digits and a unit: H M S m u n")
    return min(int(found.group(1)) * _TIMEOUT_UNITS[found.group(2)], MAX_TIMEOUT_SECONDS)


def response_headers(metadata: Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    """Header metadata the server sent, as ``Grpc-Metadata-<key>`` headers (binary values
    base64), the way grpc-gateway returns them."""
    out: dict[str, str] = {}
    for key, value in metadata or ():
        if key.startswith("grpc-") or key in _RESERVED:
            continue
        text = base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
        name = f"Grpc-Metadata-{key}"
        out[name] = f"{out[name]}, {text}" if name in out else text
    return out
