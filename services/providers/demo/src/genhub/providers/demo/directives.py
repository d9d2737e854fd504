"""Prompt directives that make the demo provider misbehave on purpose, for demos and tests.

``[sleep:MS]`` adds latency; ``[fail:retryable:N]`` fails the first N attempts with a retryable
error; ``[fail:permanent]`` always fails permanently; ``[empty]`` returns an empty result
(which the dispatcher must treat as a retryable failure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SLEEP = re.compile(r"\[sleep:(\d{1,7})\]")
_RETRYABLE = re.compile(r"\[fail:retryable:(\d{1,3})\]")


@dataclass(frozen=True)
class Directives:
    """What the prompt asks the demo provider to do."""

    sleep_ms: int = 0
    retryable_failures: int = 0
    permanent_failure: bool = False
    empty: bool = False


def parse(prompt: str) -> Directives:
    """Read the directives in ``prompt``."""
    sleep = _SLEEP.search(prompt)
    retry = _RETRYABLE.search(prompt)
    return Directives(
        sleep_ms=int(sleep.group(1)) if sleep else 0,
        retryable_failures=int(retry.group(1)) if retry else 0,
        permanent_failure="[fail:permanent]" in prompt,
        empty="[empty]" in prompt,
    )
