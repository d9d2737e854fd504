"""GenHub services as real processes, configured only through ``GENHUB_*`` variables, their
JSON log lines collected from stdout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any

from tests.support.waiting import eventually


class ServiceProcess:
    """One running service and the log lines it has printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(raw))

    async def logged(self, message: str, timeout: float = 20) -> dict[str, Any]:
        """The first line with this message, waiting for it; fails if the process exits."""

        async def found() -> dict[str, Any] | None:
            match = next((line for line in self.lines if line.get("message") == message), None)
            if match is None and self.process.returncode is not None:
                raise AssertionError(f"exited with {self.process.returncode}: {self.lines[-5:]}")
            return match

        line = await eventually(found, lambda m: m is not None, timeout=timeout, what=message)
        assert line is not None
        return line

    async def stop(self) -> int:
        """SIGTERM, then wait for the exit (SIGKILL after 30 s); the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._reader
        return int(self.process.returncode or 0)


@contextlib.asynccontextmanager
async def service(args: list[str], env: Mapping[str, str]) -> AsyncIterator[ServiceProcess]:
    """Run ``python -m <args>`` with ``env`` added to this environment until the block exits."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        env=dict(os.environ) | dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = ServiceProcess(process)
    try:
        yield running
    finally:
        await running.stop()
