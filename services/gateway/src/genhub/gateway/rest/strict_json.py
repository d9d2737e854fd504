"""Request bodies as JSON values, read strictly (RFC 8259): UTF-8 only, no ``NaN``/``Infinity``
tokens, nesting bounded, and duplicate object keys kept visible instead of silently dropped.

Python's ``json`` module keeps the last of two equal keys and reads ``NaN``; proto3 JSON (and
the protobuf conformance suite) refuses both. Rather than failing at once without a location,
the reader marks them (``JsonObject.duplicates``, ``NonFinite``) so that the descriptor walk in
``proto_json`` can name the field they sit in. Integer literals too long for any proto3 number
are marked the same way (``HugeInteger``): Python refuses to convert more than 4300 digits, which
would otherwise fail the whole body with an error about Python's own settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The deepest nesting of objects and arrays a body may have. GenHub's request messages need
# fewer than ten levels; 32 keeps json_format's own limit (100 nested messages, and a JSON
# level inside a Struct costs two) out of reach.
MAX_DEPTH = 32
# The most digits an integer literal can have and still be in range of some proto3 number
# kind: the largest double, about 1.8e308, has 309. A longer literal is out of range for every
# field, so it is never converted (converting is quadratic in the digits, and Python refuses
# more than 4300).
MAX_INTEGER_DIGITS = 309


class JsonObject(dict[str, Any]):
    """A JSON object; ``duplicates`` lists the keys it had more than once, in order."""

    duplicates: tuple[str, ...] = ()


@dataclass(frozen=True)
class NonFinite:
    """Where the body had a ``NaN``, ``Infinity`` or ``-Infinity`` token (not JSON)."""

    token: str


@dataclass(frozen=True)
class HugeInteger:
    """Where the body had an integer literal of more than ``MAX_INTEGER_DIGITS`` digits."""

    token: str

    @property
    def digits(self) -> int:
        """How many digits the literal has (its sign aside)."""
        return len(self.token.lstrip("-"))


class JsonSyntaxError(ValueError):
    """The body is not JSON at all; ``str()`` says why and where (line and column)."""


def _object(pairs: Iterable[tuple[str, Any]]) -> JsonObject:
    made = JsonObject()
    duplicates: list[str] = []
    for key, value in pairs:
        if key in made:
            duplicates.append(key)
        made[key] = value
    if duplicates:
        made.duplicates = tuple(duplicates)
    return made


def _integer(token: str) -> int | HugeInteger:
    if len(token.lstrip("-")) > MAX_INTEGER_DIGITS:
        return HugeInteger(token)
    return int(token)


def loads(raw: bytes) -> Any:
    """``raw`` as a JSON value: objects are ``JsonObject``, non-finite tokens ``NonFinite``,
    integer literals longer than ``MAX_INTEGER_DIGITS`` ``HugeInteger``.

    Raises ``JsonSyntaxError`` for bytes that are not UTF-8 (RFC 8259 section 8.1; a byte order
    mark is refused too), for malformed JSON, and for nesting deeper than ``MAX_DEPTH``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonSyntaxError(f"is not UTF-8 (byte {exc.start} is invalid)") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_constant=NonFinite, parse_int=_integer
        )
    except RecursionError:
        raise JsonSyntaxError(f"is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise JsonSyntaxError(f"is not valid JSON: {exc}") from None
    if _too_deep(value):
        raise JsonSyntaxError(f"is nested deeper than {MAX_DEPTH} levels")
    return value


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
