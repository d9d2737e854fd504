"""Redis-backed limiter and breaker fixtures: one key prefix per test, removed afterwards, and a
Redis address nobody listens on for the fail-open cases."""

from __future__ import annotations

import socket

import redis.asyncio as aioredis


async def drop_prefix(client: aioredis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


def dead_redis_url() -> str:
    """A Redis URL on a loopback port that was free a moment ago (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"
