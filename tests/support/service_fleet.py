"""GenHub's services as real processes, configured only through ``GENHUB_*`` environment
variables as in a container, on free ports: for fault tests (signal, kill and restart any one
of them) and the soak (their memory). Logs go to one file per service under ``logs``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genhub.common import topology
from tests.support.private_infra import free_port

START_TIMEOUT = 60.0


@dataclass
class Service:
    """One service: how to start it, and its current process."""

    name: str
    module: str
    env: dict[str, str]
    health_addr: str = ""  # gRPC health service to wait for; empty for workers
    process: asyncio.subprocess.Process | None = None
    exits: list[int] = field(default_factory=list)  # exit codes of earlier processes

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid


async def serving(address: str) -> bool:
    """Whether the gRPC health service at ``address`` answers SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # typed for sync channels only
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (``VmRSS`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Services:
    """task-store, the gateway and demo workers, each a process of this Python."""

    def __init__(self, env: Mapping[str, str], logs: Path, amqp_url: str) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.amqp_url = amqp_url
        self.taskstore_addr = f"127.0.0.1:{free_port()}"
        self.gateway_addr = f"127.0.0.1:{free_port()}"
        self.base = {
            **os.environ,
            "GENHUB_LOG_LEVEL": "WARNING",
            # Listeners default to fixed ports on all interfaces (as in a pod): here each
            # process gets its own loopback port, or none.
            "GENHUB_METRICS_LISTEN": "",
            **env,
            "GENHUB_TASKSTORE_ADDR": self.taskstore_addr,
        }
        self.services: dict[str, Service] = {}
        self.metrics_ports: dict[str, int] = {}

    def define(self) -> None:
        """The services: task-store, the gateway (REST off), no workers yet."""
        self.services["taskstore"] = Service(
            "taskstore",
            "genhub.taskstore",
            {**self.base, "GENHUB_TASKSTORE_LISTEN": self.taskstore_addr},
            self.taskstore_addr,
        )
        self.services["gateway"] = Service(
            "gateway",
            "genhub.gateway",
            {**self.base, "GENHUB_GATEWAY_LISTEN": self.gateway_addr, "GENHUB_REST_LISTEN": ""},
            self.gateway_addr,
        )

    async def start(self, *names: str) -> None:
        """Start the named services together; wait until each serves (gRPC health) and each
        worker consumes (one more consumer on the work queue per worker started)."""
        services = [self.services[name] for name in names]
        workers = sum(1 for s in services if not s.health_addr)
        consumers = await self.consumers() if workers else 0
        for service in services:
            log = (self.logs / f"{service.name}.log").open("ab")
            try:
                service.process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", service.module, env=service.env, stdout=log, stderr=log
                )
            finally:
                log.close()
        deadline = time.monotonic() + START_TIMEOUT
        waiting = [s for s in services if s.health_addr]
        while True:
            for service in services:
                assert service.process is not None
                if service.process.returncode is not None:
                    raise RuntimeError(f"{service.name} exited at start; see {self.logs}")
            waiting = [s for s in waiting if not await serving(s.health_addr)]
            if not waiting and (not workers or await self.consumers() >= consumers + workers):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{', '.join(names)} did not start; see {self.logs}")
            await asyncio.sleep(0.2)

    def define_worker(self, name: str, **env: str) -> Service:
        """Define a demo worker, with ``env`` on top of the base settings (start it later)."""
        port = free_port()
        self.metrics_ports[name] = port
        self.services[name] = Service(
            name,
            "genhub.dispatcher",
            {
                **self.base,
                "GENHUB_PROVIDER": "demo",
                "GENHUB_METRICS_LISTEN": f"127.0.0.1:{port}",
                "GENHUB_HEALTH_LISTEN": f"127.0.0.1:{free_port()}",
                **env,
            },
        )
        return self.services[name]

    async def add_worker(self, name: str, **env: str) -> Service:
        """Define and start one more demo worker."""
        service = self.define_worker(name, **env)
        await self.start(name)
        return service

    async def consumers(self, provider: str = "demo") -> int:
        """Consumers of ``provider``'s work queue (a passive declare: exact, no management API)."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            await topology.declare(channel, provider)
            queue = await channel.declare_queue(topology.work_queue(provider), passive=True)
            return int(queue.declaration_result.consumer_count or 0)

    async def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` to ``name`` and wait for it to exit; returns its exit code."""
        service = self.services[name]
        process, service.process = service.process, None
        assert process is not None, f"{name} is not running"
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            code = await asyncio.wait_for(process.wait(), timeout=40)
        except TimeoutError:
            process.kill()
            code = await process.wait()
        service.exits.append(code)
        return code

    async def restart(self, name: str) -> int:
        """A rolling restart of one service: SIGTERM, wait, start again; the exit code."""
        code = await self.stop(name)
        await self.start(name)
        return code

    def rss(self) -> dict[str, int]:
        """Resident memory (KiB) of every running service."""
        return {
            name: rss_kib(s.process.pid)
            for name, s in self.services.items()
            if s.process is not None and s.process.returncode is None
        }

    async def close(self) -> None:
        """Stop everything: the gateway first, then the workers, task-store last."""
        order = ["gateway", *(n for n in self.services if n.startswith("worker")), "taskstore"]
        for name in order:
            service = self.services.get(name)
            if service is not None and service.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    await self.stop(name)


@contextlib.asynccontextmanager
async def running_services(
    env: Mapping[str, str],
    logs: Path,
    amqp_url: str,
    workers: Mapping[str, Mapping[str, str]] | None = None,
) -> AsyncIterator[Services]:
    """task-store, then the gateway and ``workers`` (name: their own settings) together, all
    running; all stopped after (add workers later with ``add_worker``)."""
    services = Services(env, logs, amqp_url)
    services.define()
    for name, settings in (workers or {}).items():
        services.define_worker(name, **settings)
    try:
        await services.start("taskstore")
        await services.start("gateway", *(workers or {}))
        yield services
    finally:
        await services.close()
