"""The chart's values: every value is commented, and values.schema.json describes exactly the
values there are and refuses typos and out-of-range settings."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.support.chart import CHART, render

KEY = re.compile(r"^(?P<indent>\s*)(?:- )?(?P<key>[A-Za-z_][\w.-]*):(?P<rest>.*)$")


def undocumented_values() -> list[str]:
    """Keys of values.yaml with neither a comment of their own (the line above) nor a
    documented ancestor; parents whose every child is documented count as documented."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented)
    missing: list[str] = []
    previous = ""
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        match = KEY.match(line)
        if match is None or stripped.startswith("#"):
            previous = stripped
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = previous.startswith("#") or any(d for _, _, d in stack)
        leaf = match["rest"].strip() not in ("", "|", ">")
        if leaf and not documented:
            missing.append(".".join([*(k for _, k, _ in stack), match["key"]]))
        stack.append((indent, match["key"], documented))
        previous = stripped
    return missing


def test_every_value_has_a_comment() -> None:
    assert undocumented_values() == []


def test_the_schema_describes_exactly_the_values() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def compare(node: dict[str, object], spec: dict[str, object], path: str) -> None:
        properties = spec.get("properties")
        if not isinstance(properties, dict) or spec.get("additionalProperties") is not False:
            return
        assert set(node) == set(properties), f"{path or 'values'}: {set(node) ^ set(properties)}"
        for key, value in node.items():
            if isinstance(value, dict):
                compare(value, properties[key], f"{path}.{key}".strip("."))

    compare(values, schema, "")


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("providers.demo.concurency=8", "additional properties 'concurency'"),
        ("providers.Demo_1.enabled=true", "Demo_1"),
        ("workerDefaults.concurrency=0", "minimum"),
        ("logLevel=LOUD", "LOUD"),
        ("gateway.ports.grpc=70000", "maximum"),
        ("secretsKey.existingSecret.name=", "minLength"),
    ],
)
def test_the_schema_refuses_bad_values(setting: str, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        render(sets=(setting,))
