"""Start GenHub's services as local processes: task-store, a demo worker, the gateway.

Used by ``make run`` (foreground, until Ctrl-C) and by the benchmark. Each service is a real
process, configured only through ``GENHUB_*`` environment variables, exactly as in a container.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genhub.common.secrets import SecretBox

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".state" / "run"


@dataclass
class DevStack:
    """The running processes and their addresses."""

    gateway: str
    taskstore: str
    rest: str
    env: dict[str, str] = field(default_factory=dict)
    # The /metrics address of each process that serves one.
    metrics: dict[str, str] = field(default_factory=dict)
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def add_worker(self, provider: str = "demo") -> str:
        """Start one more worker process for ``provider``; returns its name."""
        count = sum(1 for n in self.processes if n.startswith(f"dispatcher-{provider}"))
        name = f"dispatcher-{provider}" if count == 0 else f"dispatcher-{provider}-{count + 1}"
        self.processes[name] = await _spawn(
            name, ["genhub.dispatcher", "--provider", provider], self.env
        )
        return name


async def _wait_serving(name: str, address: str, log: Path, deadline: float) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        # The health stubs are typed for sync channels only.
        stub: Any = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become SERVING on {address}; see {log}")
            await asyncio.sleep(0.1)


def _local_secrets_key() -> str:
    """This machine's key for provider secrets, kept in the git-ignored .state/ folder."""
    path = ROOT / ".state" / "secrets.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SecretBox.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


def _log_file(name: str) -> BinaryIO:
    LOGS.mkdir(parents=True, exist_ok=True)
    return open(LOGS / f"{name}.log", "ab")


async def _spawn(name: str, args: list[str], env: Mapping[str, str]) -> asyncio.subprocess.Process:
    log = _log_file(name)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, env=dict(env), stdout=log, stderr=log
        )
    finally:
        log.close()  # the child has its own descriptor


@contextlib.asynccontextmanager
async def running(
    env: Mapping[str, str] | None = None,
    *,
    gateway_port: int = 50051,
    taskstore_port: int = 50052,
    rest_port: int = 8080,
    demo_latency_ms: int = 0,
    concurrency: int = 4,
    workers: int = 1,
    taskstore_metrics_port: int = 0,
    gateway_metrics_port: int = 0,
) -> AsyncIterator[DevStack]:
    """Start the services, wait until each answers health checks, stop them all on exit.

    Everything listens on loopback only. Task-store and the gateway serve /metrics on the
    given ports (0: off); workers serve none (several share this host).
    """
    base = dict(os.environ if env is None else env)
    taskstore = f"127.0.0.1:{taskstore_port}"
    gateway = f"127.0.0.1:{gateway_port}"
    rest = f"127.0.0.1:{rest_port}"
    base.setdefault("GENHUB_SECRETS_KEYS", _local_secrets_key())
    base |= {
        "GENHUB_TASKSTORE_ADDR": taskstore,
        "GENHUB_TASKSTORE_LISTEN": taskstore,
        "GENHUB_GATEWAY_LISTEN": gateway,
        "GENHUB_REST_LISTEN": rest,
        "GENHUB_CONCURRENCY": str(concurrency),
        "GENHUB_DEMO_LATENCY_MS": str(demo_latency_ms),
        # Workers: health on any free loopback port, no metrics.
        "GENHUB_HEALTH_LISTEN": "127.0.0.1:0",
        "GENHUB_METRICS_LISTEN": "",
    }
    stack = DevStack(gateway=gateway, taskstore=taskstore, rest=rest, env=base)
    for name, port in (("taskstore", taskstore_metrics_port), ("gateway", gateway_metrics_port)):
        if port:
            stack.metrics[name] = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        store_env = base | {"GENHUB_METRICS_LISTEN": stack.metrics.get("taskstore", "")}
        stack.processes["taskstore"] = await _spawn("taskstore", ["genhub.taskstore"], store_env)
        await _wait_serving("task-store", taskstore, LOGS / "taskstore.log", deadline)
        for _ in range(workers):
            await stack.add_worker("demo")
        gateway_env = base | {"GENHUB_METRICS_LISTEN": stack.metrics.get("gateway", "")}
        stack.processes["gateway"] = await _spawn("gateway", ["genhub.gateway"], gateway_env)
        await _wait_serving("gateway", gateway, LOGS / "gateway.log", deadline)
        for name, process in stack.processes.items():
            if process.returncode is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; see {LOGS}/{name}.log"
                )
        yield stack
    finally:
        # Gateway first (stop taking work), the workers drain, task-store last.
        order = [
            "gateway",
            *(n for n in stack.processes if n.startswith("dispatcher")),
            "taskstore",
        ]
        for name in order:
            child = stack.processes.get(name)
            if child is not None and child.returncode is None:
                child.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(child.wait(), timeout=30)
                except TimeoutError:
                    child.kill()
                    await child.wait()


EXAMPLE = """\
GenHub is running (logs in {logs}/):
  gRPC  {gateway}   (genhub.v1.TaskService; reflection and health enabled)
  REST  http://{rest}   (API page: http://{rest}/docs; /healthz, /readyz)
  Prometheus metrics: {metrics}

Create an image task and fetch its result over gRPC (paste into another shell):

.venv/bin/python - <<'PY'
import grpc
from genhub.v1 import task_pb2, task_service_pb2 as api, task_service_pb2_grpc
tasks = task_service_pb2_grpc.TaskServiceStub(grpc.insecure_channel("{gateway}"))
task = tasks.CreateImageTask(api.CreateImageTaskRequest(
    provider="demo", model="demo-image",
    image=task_pb2.ImageSpec(prompt="a lighthouse at dawn", size="512x512"))).task
print("created", task.task_id, task_pb2.TaskStatus.Name(task.status))
for update in tasks.WatchTask(api.WatchTaskRequest(task_id=task.task_id)):
    print("status", task_pb2.TaskStatus.Name(update.task.status))
done = tasks.GetTask(api.GetTaskRequest(task_id=task.task_id)).task
print("image:", done.result.images[0].url[:60], "...")
PY

Press Ctrl-C to stop everything.
"""


async def _foreground() -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    async with running(
        demo_latency_ms=int(os.environ.get("GENHUB_DEMO_LATENCY_MS", "300")),
        taskstore_metrics_port=9091,
        gateway_metrics_port=9090,
    ) as st:
        metrics = ", ".join(
            f"{name} http://{address}/metrics" for name, address in st.metrics.items()
        )
        print(
            EXAMPLE.format(
                logs=LOGS.relative_to(ROOT), gateway=st.gateway, rest=st.rest, metrics=metrics
            )
        )
        waiters = [asyncio.create_task(p.wait()) for p in st.processes.values()]
        stop = asyncio.create_task(stopped.wait())
        done, _ = await asyncio.wait([stop, *waiters], return_when=asyncio.FIRST_COMPLETED)
        if stop not in done:
            print(f"a service exited unexpectedly; see {LOGS}/", file=sys.stderr)
        print("stopping...")
    print("stopped.")


def main() -> None:
    """``make run``."""
    argparse.ArgumentParser(description=__doc__).parse_args()
    asyncio.run(_foreground())


if __name__ == "__main__":
    main()
