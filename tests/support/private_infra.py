"""A private RabbitMQ, Redis and FerretDB for fault tests that stop or restart them.

The shared servers on the usual ports serve every other test (and other people's work on this
machine); a test that restarts one would break theirs. These run the same binaries on free
ports, with their state in a temporary folder, each in its own process group: :meth:`Server.stop`
and :meth:`Server.restart` affect only them, and :meth:`PrivateInfra.close` removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[2]
RABBIT_LIB = Path("/usr/lib/rabbitmq/bin")
FERRETDB = ROOT / ".cache" / "bin" / "ferretdb"
START_TIMEOUT = 90.0


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """One server process (and its children, in its own process group)."""

    name: str
    argv: list[str]
    port: int
    log: Path
    ready: Callable[[], Awaitable[bool]]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start it and wait until it answers."""
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not await self.ready():
            if self.process.returncode is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT}s; see {self.log}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """SIGTERM its process group; SIGKILL what is left after 30 s."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        # Children (RabbitMQ's Erlang VM) may outlive the launcher for a moment.
        for _ in range(150):
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    async def restart(self, pause: float = 1.0) -> None:
        """Stop, stay down ``pause`` seconds, start again on the same port and state."""
        await self.stop()
        await asyncio.sleep(pause)  # the outage itself, not a synchronisation
        await self.start()


async def _answers(check: Callable[[], Awaitable[object]]) -> bool:
    try:
        await asyncio.wait_for(check(), timeout=2)
    except Exception:
        return False
    return True


@dataclass
class PrivateInfra:
    """The three servers and their URLs."""

    redis: Server
    ferretdb: Server
    rabbitmq: Server

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb.port}/"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.rabbitmq.port}/"

    async def close(self) -> None:
        for server in (self.rabbitmq, self.ferretdb, self.redis):
            await server.stop()


def _redis(root: Path) -> Server:
    port = free_port()

    async def ping() -> bool:
        client = aioredis.Redis(port=port, socket_connect_timeout=1)
        try:
            return await _answers(client.ping)
        finally:
            await client.aclose()

    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(root)]
    return Server("redis", argv, port, root / "redis.log", ping)


def _ferretdb(root: Path) -> Server:
    port = free_port()
    data = root / "ferretdb"
    data.mkdir()

    async def ping() -> bool:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=1000
        )
        try:
            return await _answers(lambda: client.admin.command("ping"))
        finally:
            await client.close()

    argv = [
        str(FERRETDB),
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        f"--listen-addr=127.0.0.1:{port}",
        f"--state-dir={data}",
        "--telemetry=disable",
        "--debug-addr=-",
        "--log-level=warn",
    ]
    return Server("ferretdb", argv, port, root / "ferretdb.log", ping)


def _rabbitmq(root: Path) -> Server:
    port, home = free_port(), root / "rabbitmq"
    home.mkdir()
    (home / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\n"
        "loopback_users.guest = true\nlog.file.level = warning\nlog.console = false\n"
    )
    (home / "enabled_plugins").write_text("[].\n")  # no management plugin: a faster start
    (home / "env.conf").write_text("")
    cookie = home / ".erlang.cookie"
    cookie.write_text("".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20)))
    cookie.chmod(0o400)
    env = {
        "HOME": str(home),
        "RABBITMQ_NODENAME": f"genhub-faults-{port}@localhost",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_CONF_ENV_FILE": str(home / "env.conf"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }

    async def connect() -> bool:
        async def open_and_close() -> None:
            connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{port}/")
            await connection.close()

        return await _answers(open_and_close)

    argv = [str(RABBIT_LIB / "rabbitmq-server")]
    return Server("rabbitmq", argv, port, root / "rabbitmq.log", connect, env, home)


@contextlib.asynccontextmanager
async def private_infra(root: Path) -> AsyncIterator[PrivateInfra]:
    """Start the three servers under ``root`` (RabbitMQ first: it is the slowest)."""
    infra = PrivateInfra(_redis(root), _ferretdb(root), _rabbitmq(root))
    try:
        await asyncio.gather(infra.rabbitmq.start(), infra.redis.start(), infra.ferretdb.start())
        yield infra
    finally:
        await infra.close()
