"""Start GenHub's services as local processes: task-store, provider workers, the gateway; for
``make run`` also the webhook notifier and the media sweep, with the media store in the local
versitygw bucket.

Used by ``make run`` (foreground, until Ctrl-C) and by the benchmark. Each service is a real
process, configured only through environment variables, exactly as in a container.

``make run`` starts a worker per entry of ``WORKERS``. With ``GENHUB_FAKE_PROVIDERS=1`` it also
starts each worker's fake provider servers (``tests/fakes``) and points the worker at them, so
the real adapters and SDKs run offline; without it the workers call the real APIs with the keys
in the environment (or stored through the config API).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genhub.common.secrets import SecretBox

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".state" / "run"


@dataclass(frozen=True)
class Fake:
    """A fake provider server: ``python -m <module> --port <port>``, base URL ``{<name>}``."""

    name: str
    module: str
    port: int


@dataclass(frozen=True)
class ProviderWorker:
    """A provider worker (``genhub.dispatcher --provider <provider>``) and, for
    ``GENHUB_FAKE_PROVIDERS=1``, the fakes it talks to and the environment pointing it at them
    (``{<fake name>}`` in a value is replaced by that fake's base URL)."""

    provider: str
    fakes: tuple[Fake, ...] = ()
    fake_env: Mapping[str, str] = field(default_factory=dict)


# What `make run` starts. Adding a provider is one entry here; the fake keys match the fakes'
# defaults (tests/fakes/*.py) and are not secrets.
WORKERS: tuple[ProviderWorker, ...] = (
    ProviderWorker("demo"),
    ProviderWorker(
        "volcengine",
        fakes=(Fake("ark", "tests.fakes.ark", 18601), Fake("jimeng", "tests.fakes.jimeng", 18602)),
        fake_env={
            "GENHUB_VOLCENGINE_ARK_BASE_URL": "{ark}/api/v3",
            "GENHUB_VOLCENGINE_VISUAL_BASE_URL": "{jimeng}",
            "ARK_API_KEY": "fake-ark-key",
            "VOLCENGINE_ACCESS_KEY": "AKLTfakeaccesskey",
            "VOLCENGINE_SECRET_KEY": "fake-secret-key",
            "GENHUB_VOLCENGINE_POLL_SECONDS": "1",
        },
    ),
    ProviderWorker(
        "openai",
        fakes=(Fake("openai", "tests.fakes.openai", 18603),),
        fake_env={"OPENAI_BASE_URL": "{openai}/v1", "OPENAI_API_KEY": "fake-openai-key"},
    ),
)


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

    async def add_worker(self, provider: str = "demo", env: Mapping[str, str] | None = None) -> str:
        """Start one more worker process for ``provider`` (with ``env``, else the stack's);
        returns its name."""
        count = sum(1 for n in self.processes if n.startswith(f"dispatcher-{provider}"))
        name = f"dispatcher-{provider}" if count == 0 else f"dispatcher-{provider}-{count + 1}"
        self.processes[name] = await _spawn(
            name, ["genhub.dispatcher", "--provider", provider], env or self.env
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
    return _local_secret("secrets.key", SecretBox.generate_key)


def _local_secret(name: str, make: Callable[[], str]) -> str:
    """A development secret of this machine, kept in the git-ignored .state/ folder."""
    path = ROOT / ".state" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def media_env(rest: str) -> dict[str, str]:
    """The media store in the development bucket of ``scripts/infra.sh``'s versitygw, with
    gateway-served URLs on the REST address ``rest`` (docs/media.md)."""
    return {
        "GENHUB_MEDIA_BACKEND": "s3",
        "GENHUB_MEDIA_S3_BUCKET": "genhub-media",
        "GENHUB_MEDIA_S3_ENDPOINT": "http://127.0.0.1:7070",
        "GENHUB_MEDIA_S3_ACCESS_KEY_ID": "genhub",  # development keys (infra.sh), loopback only
        "GENHUB_MEDIA_S3_SECRET_ACCESS_KEY": "genhub-dev-secret",
        "GENHUB_MEDIA_URL_KEYS": _local_secret("media-url.key", lambda: secrets.token_hex(32)),
        "GENHUB_MEDIA_PUBLIC_URL": f"http://{rest}",
    }


def webhook_env() -> dict[str, str]:
    """The notifier's signing secret (``.state/webhook.secret``, give it to receivers) and
    loopback receivers allowed, for trying webhooks on this machine."""
    secret = _local_secret(
        "webhook.secret", lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )
    return {"GENHUB_WEBHOOK_SECRETS": secret, "GENHUB_EGRESS_ALLOW": "127.0.0.0/8"}


def _log_file(name: str) -> BinaryIO:
    LOGS.mkdir(parents=True, exist_ok=True)
    return open(LOGS / f"{name}.log", "ab")


async def _spawn(name: str, args: list[str], env: Mapping[str, str]) -> asyncio.subprocess.Process:
    log = _log_file(name)
    # As in the images (deploy/docker): glibc gives each thread that allocates its own malloc
    # arena and keeps their freed pages, so a worker whose threads decode images sat at two RSS
    # levels ~10% apart in `make soak`; two arenas keep it flat. The caller's value wins.
    env = {"MALLOC_ARENA_MAX": "2", **env}
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, env=env, stdout=log, stderr=log, cwd=ROOT
        )
    finally:
        log.close()  # the child has its own descriptor


async def _wait_listening(name: str, port: int, deadline: float) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            if time.monotonic() > deadline:
                message = f"{name} is not listening on {port}; see {LOGS}/{name}.log"
                raise RuntimeError(message) from exc
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def _start_fakes(
    worker: ProviderWorker, stack: DevStack, env: Mapping[str, str], deadline: float
) -> dict[str, str]:
    """Start a worker's fakes; returns the worker's environment pointing at them."""
    urls: dict[str, str] = {}
    for fake in worker.fakes:
        name = f"fake-{fake.name}"
        stack.processes[name] = await _spawn(name, [fake.module, "--port", str(fake.port)], env)
        await _wait_listening(name, fake.port, deadline)
        urls[fake.name] = f"http://127.0.0.1:{fake.port}"
    return {key: value.format(**urls) for key, value in worker.fake_env.items()}


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
    providers: tuple[str, ...] = ("demo",),
    fake_providers: bool = False,
    media: bool = False,
    webhooks: bool = False,
) -> AsyncIterator[DevStack]:
    """Start the services and a worker per provider in ``providers`` (entries of ``WORKERS``),
    wait until each answers health checks, stop them all on exit. ``fake_providers`` starts the
    workers' fakes and points the workers at them; ``media`` stores outputs in the local
    versitygw (and sweeps it hourly); ``webhooks`` runs the notifier.

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
    if media:
        base = media_env(rest) | base
    if webhooks:
        base = webhook_env() | base
    stack = DevStack(gateway=gateway, taskstore=taskstore, rest=rest, env=base)
    for name, port in (("taskstore", taskstore_metrics_port), ("gateway", gateway_metrics_port)):
        if port:
            stack.metrics[name] = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        store_env = base | {"GENHUB_METRICS_LISTEN": stack.metrics.get("taskstore", "")}
        stack.processes["taskstore"] = await _spawn("taskstore", ["genhub.taskstore"], store_env)
        await _wait_serving("task-store", taskstore, LOGS / "taskstore.log", deadline)
        for worker in WORKERS:
            if worker.provider not in providers:
                continue
            env = dict(base)
            if fake_providers:
                env |= await _start_fakes(worker, stack, base, deadline)
            for _ in range(workers):
                await stack.add_worker(worker.provider, env)
        gateway_env = base | {"GENHUB_METRICS_LISTEN": stack.metrics.get("gateway", "")}
        stack.processes["gateway"] = await _spawn("gateway", ["genhub.gateway"], gateway_env)
        await _wait_serving("gateway", gateway, LOGS / "gateway.log", deadline)
        if webhooks:
            stack.processes["notifier"] = await _spawn("notifier", ["genhub.notifier"], base)
        if media:
            stack.processes["media-sweep"] = await _spawn(
                "media-sweep", ["genhub.media", "sweep", "--every", "3600"], base
            )
        for name, process in stack.processes.items():
            if process.returncode is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; see {LOGS}/{name}.log"
                )
        yield stack
    finally:
        # Sweep and notifier first, then the gateway (stop taking work), the workers drain,
        # then task-store, fakes last.
        stages = ["media", "notifier", "gateway", "dispatcher", "taskstore", "fake"]
        order = sorted(stack.processes, key=lambda n: stages.index(n.split("-")[0]))
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
print("image:", done.result.images[0].url)
PY

Images and videos are kept in the local versitygw bucket (genhub-media); task answers carry
short-lived URLs that the gateway serves. Webhooks are signed with the secret in
.state/webhook.secret (receivers on 127.0.0.1 are allowed here).

Press Ctrl-C to stop everything.
"""


FAKES = """\
GENHUB_FAKE_PROVIDERS=1: the provider workers talk to local fakes ({fakes}), through their real
SDKs. Try a Seedream image (the README has Doubao, Jimeng and Seedance too):

curl -s -X POST http://{rest}/api/v1/ai/image/task -H 'Content-Type: application/json' \\
  -d '{{"provider": "volcengine", "model": "doubao-seedream-3-0-t2i-250415", "wait": "30s",
       "image": {{"prompt": "a lighthouse at dawn", "size": "1024x1024"}}}}'
"""


async def _foreground() -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    fake = os.environ.get("GENHUB_FAKE_PROVIDERS", "") not in ("", "0", "false")
    async with running(
        demo_latency_ms=int(os.environ.get("GENHUB_DEMO_LATENCY_MS", "300")),
        providers=tuple(w.provider for w in WORKERS),
        fake_providers=fake,
        media=True,
        webhooks=True,
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
        if fake:
            names = ", ".join(n for n in st.processes if n.startswith("fake-"))
            print(FAKES.format(fakes=names, rest=st.rest))
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
