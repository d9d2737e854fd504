"""Prompt directives that make a fake provider misbehave on purpose.

Written anywhere in a prompt; ``N`` limits a directive to the first N requests of that kind
carrying the same prompt (each fake counts per operation and prompt), so "fail twice, then
succeed" needs no shared state in the test:

| directive | effect |
|---|---|
| ``[status:CODE]`` / ``[status:CODE:N]`` | answer HTTP CODE with the provider's error body |
| ``[code:NAME]`` | the provider error code in that body (else one typical for CODE) |
| ``[retry-after:S]`` | send ``Retry-After: S`` with it |
| ``[refuse]`` | the provider's content-policy refusal |
| ``[sleep:MS]`` / ``[sleep:MS:N]`` | answer only after MS milliseconds (timeouts) |
| ``[empty]`` / ``[empty:N]`` | a 200 without output (no image, no text, no video URL) |
| ``[queued:MS]`` / ``[render:MS]`` | a job stays queued, then running, this long |
| ``[jobfail]`` | the job ends failed |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATUS = re.compile(r"\[status:(\d{3})(?::(\d+))?\]")
_CODE = re.compile(r"\[code:([A-Za-z0-9_.]+)\]")
_RETRY_AFTER = re.compile(r"\[retry-after:(\d+(?:\.\d+)?)\]")
_SLEEP = re.compile(r"\[sleep:(\d+)(?::(\d+))?\]")
_EMPTY = re.compile(r"\[empty(?::(\d+))?\]")
_QUEUED = re.compile(r"\[queued:(\d+)\]")
_RENDER = re.compile(r"\[render:(\d+)\]")

ALWAYS = 1 << 30


@dataclass(frozen=True)
class Directives:
    """What a prompt asks a fake to do; ``*_times`` is how many requests it applies to."""

    status: int = 0
    status_times: int = 0
    code: str = ""
    retry_after: str = ""
    refuse: bool = False
    sleep_ms: int = 0
    sleep_times: int = 0
    empty_times: int = 0
    queued_ms: int = 100
    render_ms: int = 200
    job_fails: bool = False

    def fails(self, seen: int) -> bool:
        """Whether request number ``seen`` (1-based) answers with ``status``."""
        return bool(self.status) and seen <= self.status_times

    def sleeps(self, seen: int) -> float:
        """Seconds to wait before answering request number ``seen``."""
        return self.sleep_ms / 1000 if seen <= self.sleep_times else 0.0

    def empty(self, seen: int) -> bool:
        """Whether request number ``seen`` answers 200 without output."""
        return seen <= self.empty_times


def _times(value: str | None) -> int:
    return int(value) if value else ALWAYS


def parse(prompt: str) -> Directives:
    """Read the directives in ``prompt``."""
    status = _STATUS.search(prompt)
    code = _CODE.search(prompt)
    retry_after = _RETRY_AFTER.search(prompt)
    sleep = _SLEEP.search(prompt)
    empty = _EMPTY.search(prompt)
    queued = _QUEUED.search(prompt)
    render = _RENDER.search(prompt)
    return Directives(
        status=int(status.group(1)) if status else 0,
        status_times=_times(status.group(2)) if status else 0,
        code=code.group(1) if code else "",
        retry_after=retry_after.group(1) if retry_after else "",
        refuse="[refuse]" in prompt,
        sleep_ms=int(sleep.group(1)) if sleep else 0,
        sleep_times=_times(sleep.group(2)) if sleep else 0,
        empty_times=_times(empty.group(1)) if empty else 0,
        queued_ms=int(queued.group(1)) if queued else 100,
        render_ms=int(render.group(1)) if render else 200,
        job_fails="[jobfail]" in prompt,
    )
