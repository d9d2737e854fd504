"""``google.api.http`` path templates: parsing, matching request paths, and OpenAPI paths.

The grammar (google/api/http.proto)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LITERAL = re.compile(r"[^/{}*=:]+$")
_ENCODED_SLASH = re.compile(r"%2[fF]")
# A '%' that does not start '%' HEXDIG HEXDIG (RFC 3986 section 2.1). ``unquote`` would keep it
# as a literal '%', so '/tasks/%zz' would look up a task named '%zz' instead of being refused.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class TemplateError(ValueError):
    """A path template that does not follow the ``google.api.http`` grammar."""


class MalformedEscapeError(ValueError):
    """A path value with a ``%`` that is not followed by two hex digits."""


@dataclass(frozen=True)
class Variable:
    """A ``{field.path=segments}`` variable: the field it fills and the segments it spans."""

    field_path: str
    segments: tuple[str, ...]

    @property
    def multi_segment(self) -> bool:
        """Whether the value may contain ``/`` (a ``**`` or more than one segment)."""
        return len(self.segments) > 1 or "**" in self.segments


@dataclass(frozen=True)
class PathTemplate:
    """A parsed path template, compiled into a regular expression over the raw request path."""

    template: str
    parts: tuple[str | Variable, ...]
    verb: str
    _regex: re.Pattern[str]

    @classmethod
    def parse(cls, template: str) -> PathTemplate:
        """Parse ``template``; ``TemplateError`` names what is wrong."""
        if not template.startswith("/"):
            raise TemplateError(f"{template!r}: a template starts with '/'")
        body, verb = _split_verb(template)
        parts: list[str | Variable] = []
        for raw in _split_segments(body[1:], template):
            if raw.startswith("{"):
                parts.append(_parse_variable(raw, template))
            else:
                _check_segment(raw, template)
                parts.append(raw)
        flat = [s for p in parts for s in (p.segments if isinstance(p, Variable) else (p,))]
        if "**" in flat[:-1]:
            raise TemplateError(f"{template!r}: '**' may only be the last segment")
        names = [p.field_path for p in parts if isinstance(p, Variable)]
        if len(names) != len(set(names)):
            raise TemplateError(f"{template!r}: a field is bound twice")
        return cls(template, tuple(parts), verb, _compile(parts, verb))

    @property
    def variables(self) -> list[Variable]:
        """The variables, in path order."""
        return [p for p in self.parts if isinstance(p, Variable)]

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key among templates matching one path: a verb, then more literals, then fewer
        ``**`` win (so ``/users:find`` beats ``/{id}`` and ``/a/b`` beats ``/a/{x}``)."""
        literals = sum(1 for p in self.parts if isinstance(p, str) and p not in ("*", "**"))
        globs = sum(1 for p in self.parts if p == "**") + sum(
            v.segments.count("**") for v in self.variables
        )
        return (1 if self.verb else 0, literals, -globs)

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Field path -> decoded value when ``raw_path`` (still percent-encoded) matches.

        Single-segment values are fully decoded; multi-segment values keep ``%2F`` encoded, as
        the ``google.api.http`` rules require. ``UnicodeDecodeError`` for non-UTF-8 escapes,
        ``MalformedEscapeError`` for a ``%`` not followed by two hex digits (``%zz``, ``%2``).
        """
        found = self._regex.match(raw_path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for index, variable in enumerate(self.variables):
            raw = found.group(f"v{index}")
            if variable.multi_segment:
                values[variable.field_path] = "%2F".join(
                    _decode(piece) for piece in _ENCODED_SLASH.split(raw)
                )
            else:
                values[variable.field_path] = _decode(raw)
        return values

    def expand(self, values: dict[str, str]) -> str:
        """The path with each variable replaced by its (percent-encoded) value."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, Variable):
                safe = "/" if part.multi_segment else ""
                out.append(quote(values[part.field_path], safe=safe))
            else:
                out.append(part)
        return "/" + "/".join(out) + (f":{self.verb}" if self.verb else "")

    def openapi_path(self, names: dict[str, str] | None = None) -> str:
        """The OpenAPI form: each variable as ``{name}`` (``names`` maps field paths to the
        parameter names to show, default the field path), wildcards as they are."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, Variable):
                out.append("{" + (names or {}).get(part.field_path, part.field_path) + "}")
            else:
                out.append(part)
        return "/" + "/".join(out) + (f":{self.verb}" if self.verb else "")

    def shape(self) -> tuple[str, ...]:
        """The template with variable names erased: templates of equal shape match the same
        paths, which OpenAPI counts as one path."""
        return (*("{}" if isinstance(p, Variable) else p for p in self.parts), self.verb)


def _decode(raw: str) -> str:
    """``raw`` percent-decoded; a malformed escape, which ``unquote`` would keep as text, raises
    ``MalformedEscapeError`` and a non-UTF-8 one ``UnicodeDecodeError``."""
    bad = _BAD_ESCAPE.search(raw)
    if bad is not None:
        escape = raw[bad.start() : bad.start() + 3]
        raise MalformedEscapeError(f"{escape!r} is not a percent-escape ('%' and two hex digits)")
    return unquote(raw, errors="strict")


def _split_verb(template: str) -> tuple[str, str]:
    # The verb is a ':' after the last '/' and outside any braces.
    depth = 0
    cut = -1
    for index, char in enumerate(template):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            cut = -1
        elif char == ":" and depth == 0:
            cut = index
    if cut < 0:
        return template, ""
    verb = template[cut + 1 :]
    if not verb or not _LITERAL.match(verb):
        raise TemplateError(f"{template!r}: bad verb {verb!r}")
    return template[:cut], verb


def _split_segments(body: str, template: str) -> list[str]:
    segments: list[str] = []
    depth = 0
    current = ""
    for char in body:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"{template!r}: unbalanced braces")
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise TemplateError(f"{template!r}: unbalanced braces")
    segments.append(current)
    return segments


def _check_segment(segment: str, template: str) -> None:
    if segment in ("*", "**"):
        return
    if not segment or not _LITERAL.match(segment):
        raise TemplateError(f"{template!r}: bad segment {segment!r}")


def _parse_variable(raw: str, template: str) -> Variable:
    if not raw.endswith("}"):
        raise TemplateError(f"{template!r}: bad variable {raw!r}")
    inner = raw[1:-1]
    field_path, eq, pattern = inner.partition("=")
    if not _IDENT.match(field_path):
        raise TemplateError(f"{template!r}: bad field path {field_path!r}")
    segments = tuple(pattern.split("/")) if eq else ("*",)
    for segment in segments:
        _check_segment(segment, template)
    return Variable(field_path, segments)


def _segment_regex(segment: str) -> str:
    if segment == "*":
        return "[^/]+"
    if segment == "**":
        return ".*"
    return re.escape(segment)


def _compile(parts: list[str | Variable], verb: str) -> re.Pattern[str]:
    pieces: list[str] = []
    index = 0
    for part in parts:
        if isinstance(part, Variable):
            inner = "/".join(_segment_regex(s) for s in part.segments)
            pieces.append(f"(?P<v{index}>{inner})")
            index += 1
        else:
            pieces.append(_segment_regex(part))
    suffix = ":" + re.escape(verb) if verb else ""
    return re.compile("^/" + "/".join(pieces) + suffix + "$")
