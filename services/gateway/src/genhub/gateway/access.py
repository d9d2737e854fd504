"""Who may call what: the gateway's auth interceptor.

With ``GENHUB_AUTH_ENABLED`` every RPC except the gRPC health and reflection services needs
``authorization: Bearer <key>`` (gRPC metadata; the REST layer forwards the HTTP header of the
same name). Then:

* no key, or one that names no live key: UNAUTHENTICATED (HTTP 401);
* a method not in :data:`USER_METHODS` from a key whose role is not admin: PERMISSION_DENIED
  (HTTP 403). Deny by default: a new RPC is admin-only until listed here;
* more than ``GENHUB_RATE_LIMIT_PER_MINUTE`` requests from one key: RESOURCE_EXHAUSTED (HTTP
  429) with ``RetryInfo`` (and ``Retry-After`` over REST). Redis down: allowed (fail open).

Tenancy inside the allowed methods (a user sees only their own tasks) is ``tenancy.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from genhub.common.errors import PermissionDenied, ResourceExhausted
from genhub.common.interceptor import guarded
from genhub.common.ratelimit import Limiter, Rate
from genhub.gateway import auth

log = logging.getLogger(__name__)

_TASKS = "/genhub.v1.TaskService/"
# What a key with ROLE_USER may call; everything else needs ROLE_ADMIN.
USER_METHODS = frozenset(
    {
        *(
            _TASKS + name
            for name in (
                "CreateImageTask",
                "CreateVideoTask",
                "CreateTextTask",
                "GetTask",
                "ListTasks",
                "DeleteTask",
                "CancelTask",
                "RetryTask",
                "WatchTask",
                "SearchTasks",
                "ListImages",
                "GetImage",
                "DeleteImage",
                "SearchImages",
            )
        ),
        "/genhub.v1.ProviderService/ListProviders",
        "/genhub.v1.ProviderService/GetProvider",
    }
)
# Served to anyone: Kubernetes probes and grpcurl's discovery.
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def needs_admin(method: str) -> bool:
    """Whether ``method`` (``/package.Service/Method``) is admin-only."""
    return method not in USER_METHODS


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates, authorises and rate-limits each RPC, and binds its principal.

    Installed inside the common error interceptor, so the errors raised here reach clients as
    gRPC statuses with details.
    """

    def __init__(self, resolver: auth.KeyResolver, limiter: Limiter, rate: Rate) -> None:
        self._resolver = resolver
        self._limiter = limiter
        self._rate = rate

    async def _admit(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        principal = await self._resolver.resolve(auth.bearer(metadata))
        auth.bind(principal)
        if needs_admin(method) and not principal.admin:
            raise PermissionDenied(
                f"{method.rsplit('/', 1)[-1]} needs an admin API key",
                reason="ADMIN_REQUIRED",
                metadata={"method": method},
            )
        decision = await self._limiter.hit(f"apikey:{principal.key_id}", self._rate)
        if not decision:
            raise ResourceExhausted(
                f"rate limit of {self._rate.limit} requests per minute for this API key "
                f"exceeded; retry in {decision.retry_after:.1f}s",
                reason="RATE_LIMITED",
                metadata={"key_id": principal.key_id, "limit": str(self._rate.limit)},
                retry_after=decision.retry_after,
            )

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the handler so the checks run in the RPC's own context, first."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        # Every handler style (unary, streams, writers, threaded) keeps its style.
        return guarded(handler, lambda context: self._admit(method, context))
