"""Provider calls made inside worker processes, as the demo provider records them
(``GENHUB_DEMO_CALL_LOG``: a "start" line when a call begins, an "end" line when it returns or
fails; a call whose worker was killed has no end)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CallEvent:
    """One line of the call log."""

    event: str  # "start" or "end"
    operation: str  # "generate" or "submit"
    task_id: str
    attempt: int
    pid: int
    at: float  # Unix time


def read_calls(path: Path) -> list[CallEvent]:
    """Every event recorded so far (none if the file does not exist yet)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        event, operation, task_id, attempt, pid, at = line.split("\t")
        events.append(CallEvent(event, operation, task_id, int(attempt), int(pid), float(at)))
    return events


def count(events: Iterable[CallEvent], event: str, task_ids: Iterable[str]) -> Counter[str]:
    """How many ``event`` lines each of ``task_ids`` has (zero included)."""
    wanted = set(task_ids)
    found = Counter(dict.fromkeys(wanted, 0))
    found.update(e.task_id for e in events if e.event == event and e.task_id in wanted)
    return found


def most_at_once(events: Iterable[CallEvent], task_ids: Iterable[str]) -> int:
    """The most calls of ``task_ids`` in progress at the same moment (start to end)."""
    wanted = set(task_ids)
    steps = sorted((e.at, 1 if e.event == "start" else -1) for e in events if e.task_id in wanted)
    now = most = 0
    for _, step in steps:
        now += step
        most = max(most, now)
    return most
