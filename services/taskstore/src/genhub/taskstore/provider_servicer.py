"""The internal ProviderStoreService RPCs: provider configuration, overrides, enabled flag."""

from __future__ import annotations

from typing import Any

import grpc

from genhub.common.errors import InvalidArgument
from genhub.store.v1 import provider_store_pb2 as pb
from genhub.store.v1 import provider_store_pb2_grpc
from genhub.taskstore.providers import ProviderRepository

Context = grpc.aio.ServicerContext[Any, Any]


def _require(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument.one(field, "is required")


class ProviderStoreServicer(provider_store_pb2_grpc.ProviderStoreServiceServicer):
    """Stores what the gateway's ProviderService manages; never sees a plaintext secret."""

    def __init__(self, repository: ProviderRepository) -> None:
        self._repo = repository

    async def PutProviderConfig(
        self, request: pb.PutProviderConfigRequest, context: Context
    ) -> pb.PutProviderConfigResponse:
        """Store a configuration; a compare-and-set when expected_version is set."""
        _require("stored.config.provider", request.stored.config.provider)
        if request.stored.config.api_key or request.stored.config.secret_access_key:
            raise InvalidArgument.one("stored.config", "secrets must arrive encrypted")
        stored = await self._repo.put_config(request.stored, request.expected_version)
        return pb.PutProviderConfigResponse(stored=stored)

    async def GetProviderConfig(
        self, request: pb.GetProviderConfigRequest, context: Context
    ) -> pb.GetProviderConfigResponse:
        """A stored configuration."""
        _require("provider", request.provider)
        return pb.GetProviderConfigResponse(stored=await self._repo.get_config(request.provider))

    async def ListProviderConfigs(
        self, request: pb.ListProviderConfigsRequest, context: Context
    ) -> pb.ListProviderConfigsResponse:
        """Every stored configuration."""
        return pb.ListProviderConfigsResponse(stored=await self._repo.list_configs())

    async def DeleteProviderConfig(
        self, request: pb.DeleteProviderConfigRequest, context: Context
    ) -> pb.DeleteProviderConfigResponse:
        """Remove a stored configuration."""
        _require("provider", request.provider)
        await self._repo.delete_config(request.provider)
        return pb.DeleteProviderConfigResponse()

    async def SetProviderEnabled(
        self, request: pb.SetProviderEnabledRequest, context: Context
    ) -> pb.SetProviderEnabledResponse:
        """Enable or disable a provider."""
        _require("provider", request.provider)
        provider = await self._repo.set_enabled(request.provider, request.enabled)
        return pb.SetProviderEnabledResponse(provider=provider)

    async def PutModelOverride(
        self, request: pb.PutModelOverrideRequest, context: Context
    ) -> pb.PutModelOverrideResponse:
        """Add or replace a model."""
        _require("provider", request.provider)
        _require("model.model", request.model.model)
        provider = await self._repo.put_model(request.provider, request.model)
        return pb.PutModelOverrideResponse(provider=provider)

    async def DeleteModelOverride(
        self, request: pb.DeleteModelOverrideRequest, context: Context
    ) -> pb.DeleteModelOverrideResponse:
        """Remove a model override."""
        _require("provider", request.provider)
        _require("model", request.model)
        provider = await self._repo.delete_model(request.provider, request.model)
        return pb.DeleteModelOverrideResponse(provider=provider)
