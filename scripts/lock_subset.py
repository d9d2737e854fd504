"""Print the part of requirements.lock that some of our packages need: the pinned, hash-checked
third-party requirements reachable from them, for ``pip install --require-hashes --no-deps``.

    python lock_subset.py requirements.lock libs/protos libs/common services/gateway

The dependency graph comes from the lock file's own ``# via`` annotations (uv writes, under each
pinned package, every package that requires it), so the subset uses exactly the versions and
hashes the whole repository was locked and tested with. Our own (``-e ./path``) entries are left
out: the images build and install those from source. Standard library only: it runs in the
image's build stage before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


def normalize(name: str) -> str:
    """PEP 503 name normalisation: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Entry:
    """One requirement of the lock file: its text (pin and hashes) and who requires it."""

    name: str
    text: list[str]
    editable: bool
    required_by: set[str] = field(default_factory=set)


def parse(lock: str) -> list[Entry]:
    """The lock file's entries, in order."""
    entries: list[Entry] = []
    in_via = False
    for line in lock.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace() and not line.startswith("#"):
            editable = line.startswith("-e ")
            spec = line.removeprefix("-e ").strip().rstrip("\\").strip()
            name = spec if editable else re.split(r"[=<>!~;\[ ]", spec, maxsplit=1)[0]
            entries.append(
                Entry(name=name if editable else normalize(name), text=[line], editable=editable)
            )
            in_via = False
            continue
        if not entries:
            continue  # the header comment
        stripped = line.strip()
        if stripped.startswith("--hash="):
            entries[-1].text.append(line)
        elif stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                entries[-1].required_by.add(rest)
        elif in_via and stripped.startswith("#"):
            entries[-1].required_by.add(stripped.lstrip("#").strip())
    return entries


def project_name(package_dir: Path) -> str:
    """The normalised ``[project].name`` of a package directory's pyproject.toml."""
    with open(package_dir / "pyproject.toml", "rb") as file:
        return normalize(tomllib.load(file)["project"]["name"])


def subset(lock: str, roots: list[str]) -> list[Entry]:
    """The third-party entries reachable from the projects named ``roots``."""
    entries = parse(lock)
    requires: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        for parent in entry.required_by:
            if not parent.startswith("-r "):
                requires[normalize(parent)].add(entry.name)
    wanted: set[str] = set()
    todo = [normalize(root) for root in roots]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(requires[name])
    return [e for e in entries if not e.editable and e.name in wanted]


def main(argv: list[str]) -> int:
    """CLI: ``lock_subset.py LOCK PACKAGE_DIR...``; prints the subset to stdout."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    lock = Path(argv[0]).read_text(encoding="utf-8")
    roots = [project_name(Path(d)) for d in argv[1:]]
    for entry in subset(lock, roots):
        print("\n".join(entry.text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
