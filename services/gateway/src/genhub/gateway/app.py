"""Gateway composition root: task-store client, Redis watcher, gRPC server, and the REST/JSON
server in front of it. The gateway publishes nothing itself: task-store does, from its outbox."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import redis.asyncio as aioredis

from genhub.common import store_client
from genhub.common.api_key_store_client import ApiKeyStoreClient
from genhub.common.metrics import start_metrics_server
from genhub.common.provider_client import ProviderStoreClient
from genhub.common.ratelimit import Rate, RedisLimiter
from genhub.common.secrets import SecretBox
from genhub.common.server import Server, wait_for_signal
from genhub.common.user_store_client import UserStoreClient
from genhub.egress import EgressPolicy
from genhub.gateway import auth
from genhub.gateway.access import AuthInterceptor
from genhub.gateway.api_key_servicer import ApiKeyServicer
from genhub.gateway.catalogue import Catalogue
from genhub.gateway.config import GatewaySettings
from genhub.gateway.media_results import MediaInterceptor, MediaResults
from genhub.gateway.page_tokens import PageTokens
from genhub.gateway.provider_servicer import ProviderServicer
from genhub.gateway.rest import server as rest_server
from genhub.gateway.rest.media_route import media_route
from genhub.gateway.servicer import TaskServicer
from genhub.gateway.users import UserServicer
from genhub.gateway.watcher import TaskWatcher
from genhub.media import MediaSettings, MediaStore, build_store
from genhub.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    provider_service_pb2,
    provider_service_pb2_grpc,
    task_service_pb2,
    task_service_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
)

log = logging.getLogger(__name__)
SERVICE_NAMES = [
    task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
    provider_service_pb2.DESCRIPTOR.services_by_name["ProviderService"].full_name,
    user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
    api_key_service_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name,
]


@contextlib.asynccontextmanager
async def running(
    settings: GatewaySettings, media: MediaStore | None = None
) -> AsyncIterator[tuple[Server, int]]:
    """Start the gateway; yields the server and its port, stops it on exit. With ``media``,
    task answers carry time-limited URLs of stored files and deletes remove the files."""
    redis = aioredis.Redis.from_url(settings.redis_url.get_secret_value(), socket_connect_timeout=2)
    async with store_client.connect(settings.taskstore_addr) as store:
        pepper = settings.api_key_pepper.get_secret_value()
        pages = PageTokens.from_secret(pepper)
        keys = ApiKeyStoreClient(store.channel)
        resolver = (
            auth.KeyResolver(
                keys,
                pepper.encode(),
                bootstrap_key=settings.bootstrap_admin_key.get_secret_value(),
                ttl=settings.api_key_cache_seconds,
            )
            if pepper
            else None
        )
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if settings.auth_enabled:
            assert resolver is not None  # the settings require a pepper with auth on
            limiter = RedisLimiter(redis, prefix=settings.events_prefix, name="gateway")
            rate = Rate(settings.rate_limit_per_minute, 60.0, settings.rate_limit_burst)
            interceptors.append(AuthInterceptor(resolver, limiter, rate))
        if media is not None:
            interceptors.append(MediaInterceptor(MediaResults(media)))
        server = Server(SERVICE_NAMES, interceptors)
        box = SecretBox.from_setting(settings.secrets_keys.get_secret_value())
        catalogue = Catalogue(store, settings.catalogue_ttl_seconds)
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(
            TaskServicer(
                store,
                catalogue,
                TaskWatcher(store, redis, settings.events_prefix),
                box,
                EgressPolicy.from_setting(settings.egress_allow),
                pages=pages,
            ),
            server.grpc,
        )
        users = UserStoreClient(store.channel)
        api_key_service_pb2_grpc.add_ApiKeyServiceServicer_to_server(
            ApiKeyServicer(keys, users, resolver, pages), server.grpc
        )
        providers = ProviderServicer(store, ProviderStoreClient(store.channel), catalogue, box)
        provider_service_pb2_grpc.add_ProviderServiceServicer_to_server(providers, server.grpc)
        user_service_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(users), server.grpc)
        port = server.bind(settings.gateway_listen)
        try:
            await server.start()
            await providers.reencrypt_stored_secrets()
            await server.mark_serving()
            log.info("gateway serving", extra={"port": port, "auth": settings.auth_enabled})
            yield server, port
        finally:
            await server.stop()
            await redis.aclose()


async def serve(
    settings: GatewaySettings,
    media: MediaSettings | None = None,
    stop: Callable[[], Awaitable[None]] = wait_for_signal,
) -> None:
    """Run until ``stop`` returns (SIGTERM/SIGINT); then report NOT_SERVING for
    ``shutdown_delay_seconds`` while still answering, stop REST (unless ``rest_listen`` is
    empty), then gRPC. With a media store, answers link stored files; with URL keys (always
    for a local folder), REST also serves them at ``GET /api/v1/media/{media_id}``."""
    metrics = start_metrics_server(settings.metrics_listen)
    try:
        async with contextlib.AsyncExitStack() as stack:
            routes = []
            store = None
            if media is not None and media.enabled:
                store = build_store(media, fetch=False)
                stack.push_async_callback(store.aclose)
            signer = media.signer() if media is not None else None
            if store is not None and signer is not None:
                routes.append(media_route(store, signer))  # the files behind gateway-signed URLs
            server, port = await stack.enter_async_context(running(settings, store))
            target = rest_server.loopback_target(settings.gateway_listen, port)
            await stack.enter_async_context(rest_server.running(settings, target, routes))
            await stop()
            await server.drain(settings.shutdown_delay_seconds)
    finally:
        if metrics is not None:
            metrics.close()
