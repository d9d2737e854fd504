"""Request content as HTTP delivers it (RFC 9110 sections 8.3, 8.4, 8.6): JSON only, content
codings undone, and every size limit applied before and after decoding.

* ``Content-Type`` must be ``application/json`` (parameters other than ``charset`` ignored;
  ``charset`` if given must be ``utf-8``, the only encoding RFC 8259 allows between systems).
  Absent, the content is taken to be JSON. Anything else is ``415``. Given more than once, it is
  ``400``: Content-Type is a singleton field (RFC 9110 section 5.3 forbids sending it twice), so
  such a request is malformed rather than in a format this server does not support.
* ``Content-Encoding``: ``gzip`` (``x-gzip``), ``deflate`` (the zlib format, RFC 9110 section
  8.4.1.2) and ``identity``, applied in the order listed; any other is ``415`` with an
  ``Accept-Encoding`` header naming these.
* Size: the content as sent, and again once decoded, may be at most ``limit`` bytes; more is
  ``413``, refused as soon as it is known (``Content-Length``, or the byte that crosses the limit),
  so a compression bomb never gets inflated past the limit.

Refusals that leave content unread carry ``Connection: close``: the server answers, then reads and
drops what is still coming before closing (``protocol``), so the client sees the answer rather
than a reset.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import grpc
from starlette.datastructures import Headers
from starlette.requests import Request

from genhub.gateway.rest.errors import RestError

ACCEPT_ENCODING = "gzip, deflate"
JSON_MEDIA_TYPE = "application/json"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_CODINGS = {"gzip": _GZIP_WBITS, "x-gzip": _GZIP_WBITS, "deflate": _ZLIB_WBITS}
_CLOSE = {"Connection": "close"}


def has_content(headers: Headers) -> bool:
    """Whether the request carries content (RFC 9112 section 6.3): chunked, or a
    ``Content-Length`` other than 0."""
    if "transfer-encoding" in headers:
        return True
    length = headers.get("content-length", "0").strip()
    return length != "0"


async def read(request: Request, limit: int) -> bytes:
    """The request's content, decoded from its content codings; ``RestError`` 413, 415 or 400
    (content that does not decode) otherwise. ``b""`` when there is none."""
    headers = request.headers
    if not has_content(headers):
        return b""
    check_media_type(headers, request.method)
    codings = content_codings(headers)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, "")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, "")
        chunks.append(chunk)
    content = b"".join(chunks)
    for coding in reversed(codings):
        content = _inflate(content, coding, limit)
    return content


def check_media_type(headers: Headers, method: str) -> None:
    """``RestError`` 415 unless the content is JSON in UTF-8 (or has no ``Content-Type``); 400
    when ``Content-Type`` is given more than once."""
    given = headers.getlist("content-type")
    if not given:
        return
    if len(given) > 1:
        # Naming one of the values as "not accepted" would mislead when one is JSON: the
        # request is wrong for repeating the header, whatever the values.
        raise RestError.bad_request(
            "Content-Type",
            f"is given {len(given)} times; send it once: {JSON_MEDIA_TYPE}",
            headers=_CLOSE,
        )
    media_type, _, parameters = given[0].partition(";")
    charset = _parameters(parameters).get("charset", "utf-8").lower()
    if media_type.strip().lower() == JSON_MEDIA_TYPE and charset == "utf-8":
        return
    advertised = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}.get(method)
    raise RestError.bad_request(
        "Content-Type",
        f"{given[0][:80]!r} is not accepted; send {JSON_MEDIA_TYPE} (UTF-8)",
        status=415,
        headers={**_CLOSE, **({advertised: JSON_MEDIA_TYPE} if advertised else {})},
    )


def _parameters(text: str) -> Mapping[str, str]:
    found: dict[str, str] = {}
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if sep:
            found[name.strip().lower()] = value.strip().strip('"')
    return found


def content_codings(headers: Headers) -> list[str]:
    """The content codings applied to the content, in the order applied (``identity``
    dropped); ``RestError`` 415 with ``Accept-Encoding`` for one this server cannot undo."""
    codings: list[str] = []
    for value in headers.getlist("content-encoding"):
        for token in value.split(","):
            coding = token.strip().lower()
            if coding in ("", "identity"):
                continue
            if coding not in _CODINGS:
                raise RestError.bad_request(
                    "Content-Encoding",
                    f"{coding[:40]!r} is not accepted; use one of: {ACCEPT_ENCODING}",
                    status=415,
                    headers={**_CLOSE, "Accept-Encoding": ACCEPT_ENCODING},
                )
            codings.append(coding)
    return codings


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    """``data`` decoded from ``coding``, at most ``limit`` bytes of output. gzip may have
    several members (RFC 1952 section 2.2); nothing may follow the last one."""
    wbits = _CODINGS[coding]
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits)
        pending = rest
        try:
            while not inflater.eof:
                # max_length caps the output of each step, so no step inflates past the limit.
                piece = inflater.decompress(pending, limit + 1 - len(out))
                out += piece
                if len(out) > limit:
                    raise _too_large(limit, coding)
                pending = inflater.unconsumed_tail
                if not pending and not piece:
                    break
        except zlib.error as exc:
            raise _undecodable(coding, str(exc)) from None
        if not inflater.eof:
            raise _undecodable(coding, "the data ends before the stream does")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)
        if wbits != _GZIP_WBITS:
            raise _undecodable(coding, "there is data after the end of the stream")


def _too_large(limit: int, coding: str) -> RestError:
    decoded = f" once decoded from {coding}" if coding else ""
    return RestError.bad_request(
        "body",
        f"is larger than {limit} bytes{decoded}",
        f"the request body is larger than {limit} bytes{decoded}",
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        status=413,
        headers=_CLOSE,
    )


def _undecodable(coding: str, why: str) -> RestError:
    return RestError.bad_request("body", f"is not valid {coding} content: {why}")
