"""The query string and path values: strict ``application/x-www-form-urlencoded`` parsing, and
each text value turned into the JSON value proto3 JSON has for its field, the way grpc-gateway's
``runtime.PopulateQueryParameters`` reads them (``strconv.ParseInt``/``ParseBool``, enum names or
numbers, Timestamps, Durations and FieldMasks in their JSON string forms).

The JSON values then go through the same checks (``proto_json``) and the same converter
(``json_format``) as a request body, so a query parameter can hold exactly what a body field can.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from google.protobuf.descriptor import FieldDescriptor

from genhub.gateway.rest import fields
from genhub.gateway.rest.errors import RestError

# Query parameters one request may carry; the URL limit (edge.MAX_URL_BYTES) bounds their size.
MAX_PARAMS = 256
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_DECIMAL = re.compile(r"[-+]?[0-9]+")
# The spellings Go's strconv.ParseBool (and so grpc-gateway) accepts.
_BOOLS = {
    "true": True,
    "t": True,
    "1": True,
    "false": False,
    "f": False,
    "0": False,
    "TRUE": True,
    "True": True,
    "T": True,
    "FALSE": False,
    "False": False,
    "F": False,
}
_T = FieldDescriptor
_INTEGERS = frozenset(
    {
        _T.TYPE_INT32,
        _T.TYPE_SINT32,
        _T.TYPE_SFIXED32,
        _T.TYPE_UINT32,
        _T.TYPE_FIXED32,
        _T.TYPE_INT64,
        _T.TYPE_SINT64,
        _T.TYPE_SFIXED64,
        _T.TYPE_UINT64,
        _T.TYPE_FIXED64,
    }
)


def parse(raw: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a query string, in order, repeats kept.

    ``+`` is a space and ``%XX`` a byte; the decoded bytes must be UTF-8. ``RestError`` (400)
    names the parameter with a bad escape or bytes that are not UTF-8, or says there are more
    than ``MAX_PARAMS`` parameters. A parameter without ``=`` has the empty value.
    """
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&") if raw else ():
        if not part:
            continue
        if len(pairs) == MAX_PARAMS:
            raise RestError.bad_request("query", f"has more than {MAX_PARAMS} parameters")
        name, _, value = part.partition(b"=")
        key = _decode(name, "query")
        pairs.append((key, _decode(value, key)))
    return pairs


def _decode(raw: bytes, name: str) -> str:
    if _BAD_ESCAPE.search(raw):
        raise RestError.bad_request(_printable(name), "has a '%' not followed by two hex digits")
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise RestError.bad_request(_printable(name), "is not UTF-8 once percent-decoded") from None


def _printable(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def text_value(field: FieldDescriptor, text: str) -> Any:
    """``text`` (a path segment or query value) as the JSON value of one element of ``field``;
    ``ValueError`` with the reason when no JSON value of that kind is spelled like it.

    Integers are decimal (``-12``, ``+7``); booleans as Go's ``strconv.ParseBool`` spells them;
    enums a name or a decimal number; floats, strings, bytes (base64) and string-form well-known
    types stay text for ``proto_json`` to check.
    """
    if field.message_type is not None and field.message_type.full_name in fields.WRAPPERS:
        field = field.message_type.fields_by_name["value"]
    if field.type == _T.TYPE_BOOL:
        flag = _BOOLS.get(text)
        if flag is None:
            raise ValueError(f"{text!r} is not a boolean (true or false)")
        return flag
    if field.type in _INTEGERS or field.enum_type is not None:
        if _DECIMAL.fullmatch(text):
            try:
                return int(text)
            except ValueError:  # more digits than Python converts: far out of any range
                raise ValueError(f"{text[:20]!r}… is out of range") from None
        if field.enum_type is None:
            raise ValueError(f"must be a whole number in decimal, not {text[:40]!r}")
    return text
