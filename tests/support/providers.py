"""Demo providers for tests of worker policy: under any name, counting their calls."""

from __future__ import annotations

import time

from genhub.providers.demo import DemoProvider, DemoSettings
from genhub.providers.sdk import Call, Finished, QuotaExhausted, Submitted


class Gauge:
    """Provider calls in progress across every worker that shares it, the most seen at once,
    and when each call started (monotonic seconds)."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.starts: list[float] = []

    def enter(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        self.starts.append(time.monotonic())

    def leave(self) -> None:
        self.now -= 1


class GaugedDemo(DemoProvider):
    """The demo provider under ``name`` (its catalogue: demo-image, demo-video, demo-text),
    reporting its calls to ``gauge``; ``quota_gone`` makes every generate fail as a provider
    out of credit does."""

    def __init__(self, name: str, gauge: Gauge, render: float = 0.05) -> None:
        super().__init__(DemoSettings(video_render_seconds=render))
        self.name = name
        self.display_name = f"Demo as {name}"
        self.gauge = gauge
        self.quota_gone = False

    async def generate(self, call: Call) -> Finished:
        self.gauge.enter()
        try:
            if self.quota_gone:
                raise QuotaExhausted("insufficient credit", code="InsufficientBalance")
            return await super().generate(call)
        finally:
            self.gauge.leave()

    async def submit(self, call: Call) -> Submitted:
        self.gauge.enter()
        self.gauge.leave()
        return await super().submit(call)
