"""``genhubctl providers``: the catalogue (public API), with each model's circuit-breaker state
and each provider's limiter use (in-flight jobs, rate backlog) read from Redis."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import typer

from genhub.common.breaker import RedisBreaker, Snapshot
from genhub.common.provider_limits import ProviderLimiter
from genhub.common.ratelimit import RedisLimiter, Usage
from genhub.ctl.context import ctl, emit_json, run, table
from genhub.v1 import provider_pb2, provider_service_pb2, provider_service_pb2_grpc

app = typer.Typer(
    help="Providers: catalogue, breaker state, limiter use.", invoke_without_command=True
)


@app.callback()
def providers(ctx: typer.Context) -> None:
    """Every provider: enabled or not, its models with their breaker state (closed, open,
    half_open; seconds until an open one probes), and jobs in flight under its limits."""
    c = ctl(ctx)

    async def go() -> tuple[
        list[provider_pb2.Provider], dict[tuple[str, str], Snapshot], dict[str, Usage]
    ]:
        async with c.channel() as channel:
            stub = provider_service_pb2_grpc.ProviderServiceStub(channel)
            listed = await stub.ListProviders(
                provider_service_pb2.ListProvidersRequest(), metadata=c.metadata
            )
        client = aioredis.Redis.from_url(c.redis_url, socket_connect_timeout=2)
        try:
            breaker = RedisBreaker(client, prefix=c.redis_prefix, timeout=5)
            states = {(s.provider, s.model): s for s in await breaker.snapshots()}
            limiter = ProviderLimiter(RedisLimiter(client, prefix=c.redis_prefix, timeout=5), {})
            usage = {p.name: await limiter.usage(p.name) for p in listed.providers}
        finally:
            await client.aclose()
        return list(listed.providers), states, usage

    found, states, usage = run(go())
    rows: list[dict[str, Any]] = []
    for provider in found:
        for model in provider.models:
            state = states.get((provider.name, model.model))
            rows.append(
                {
                    "provider": provider.name,
                    "enabled": provider.enabled,
                    "model": model.model,
                    "breaker": state.state.value if state else "closed",
                    "failures": state.failures if state else 0,
                    "probe_in_seconds": round(state.retry_after, 1) if state else 0,
                    "in_flight": usage[provider.name].in_flight,
                }
            )
    if c.json:
        emit_json(rows)
        return
    columns = [
        "provider",
        "enabled",
        "model",
        "breaker",
        "failures",
        "probe_in_seconds",
        "in_flight",
    ]
    table("providers", columns, [[r[k] for k in columns] for r in rows])
