"""The real infrastructure the tests run against, on loopback (started by ``make infra-up``)."""

from __future__ import annotations

import os
import socket

import aio_pika
import httpx

AMQP_HOST = "127.0.0.1"
AMQP_PORT = 5672
MANAGEMENT = os.environ.get("GENHUB_TEST_RABBITMQ_API", "http://127.0.0.1:15672/api")
MONGO_URL = os.environ.get("GENHUB_TEST_MONGO_URL", "mongodb://127.0.0.1:27017/")
REDIS_URL = os.environ.get("GENHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AUTH = ("guest", "guest")
# versitygw, started by scripts/infra.sh with these development credentials.
S3_PORT = 7070
S3_ENDPOINT = os.environ.get("GENHUB_TEST_S3_ENDPOINT", f"http://127.0.0.1:{S3_PORT}")
S3_ACCESS_KEY = os.environ.get("GENHUB_TEST_S3_ACCESS_KEY", "genhub")
S3_SECRET_KEY = os.environ.get("GENHUB_TEST_S3_SECRET_KEY", "genhub-dev-secret")


def require_listening(name: str, port: int) -> None:
    """Fail (not skip) with a clear message when a service is not listening."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return
    except OSError as exc:
        raise RuntimeError(
            f"{name} is not listening on 127.0.0.1:{port} ({exc}); run `make infra-up`"
        ) from exc


def amqp_url(vhost: str) -> str:
    """The AMQP URL of a vhost."""
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}"


async def create_vhost(name: str) -> None:
    """Create a vhost (each test gets its own, so queues never leak between tests)."""
    async with httpx.AsyncClient(base_url=MANAGEMENT, auth=AUTH, timeout=10) as client:
        (await client.put(f"/vhosts/{name}")).raise_for_status()
        perms = {"configure": ".*", "write": ".*", "read": ".*"}
        (await client.put(f"/permissions/{name}/guest", json=perms)).raise_for_status()


async def delete_vhost(name: str) -> None:
    """Delete a vhost and everything in it."""
    async with httpx.AsyncClient(base_url=MANAGEMENT, auth=AUTH, timeout=10) as client:
        await client.delete(f"/vhosts/{name}")


async def queue_depth(vhost: str, queue: str) -> int:
    """Messages ready in a queue, read with a passive declare (the management API's counts lag)."""
    connection = await aio_pika.connect(amqp_url(vhost))
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        return int(count or 0)
