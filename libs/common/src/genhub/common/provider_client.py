"""Client of the internal ProviderStoreService, and the credentials a worker resolves from it."""

from __future__ import annotations

import json

import grpc

from genhub.common.secrets import SecretBox
from genhub.common.store_client import call
from genhub.store.v1 import provider_store_pb2 as pb
from genhub.store.v1 import provider_store_pb2_grpc
from genhub.v1 import provider_pb2, task_pb2


class ProviderStoreClient:
    """Typed calls to task-store's ProviderStoreService; failures raise GenHub errors."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = provider_store_pb2_grpc.ProviderStoreServiceStub(channel)

    async def put_config(
        self, stored: pb.StoredProviderConfig, expected_version: int = 0
    ) -> pb.StoredProviderConfig:
        """Store a configuration (secrets already encrypted); with ``expected_version``, only if
        the stored one still has that version (``Aborted`` otherwise)."""
        request = pb.PutProviderConfigRequest(stored=stored, expected_version=expected_version)
        return (await call(self._stub.PutProviderConfig, request)).stored

    async def get_config(self, provider: str) -> pb.StoredProviderConfig:
        """A stored configuration; NotFound when none."""
        request = pb.GetProviderConfigRequest(provider=provider)
        return (await call(self._stub.GetProviderConfig, request)).stored

    async def list_configs(self) -> list[pb.StoredProviderConfig]:
        """Every stored configuration."""
        resp = await call(self._stub.ListProviderConfigs, pb.ListProviderConfigsRequest())
        return list(resp.stored)

    async def delete_config(self, provider: str) -> None:
        """Remove a stored configuration."""
        request = pb.DeleteProviderConfigRequest(provider=provider)
        await call(self._stub.DeleteProviderConfig, request)

    async def set_enabled(self, provider: str, enabled: bool) -> provider_pb2.Provider:
        """Enable or disable a provider."""
        request = pb.SetProviderEnabledRequest(provider=provider, enabled=enabled)
        return (await call(self._stub.SetProviderEnabled, request)).provider

    async def put_model(self, provider: str, model: provider_pb2.Model) -> provider_pb2.Provider:
        """Add or replace a model override."""
        request = pb.PutModelOverrideRequest(provider=provider, model=model)
        return (await call(self._stub.PutModelOverride, request)).provider

    async def delete_model(self, provider: str, model: str) -> provider_pb2.Provider:
        """Remove a model override."""
        request = pb.DeleteModelOverrideRequest(provider=provider, model=model)
        return (await call(self._stub.DeleteModelOverride, request)).provider


def seal_credentials(box: SecretBox, credentials: task_pb2.ProviderCredentials) -> str:
    """Per-request credentials as one encrypted token for the queue message."""
    return box.encrypt(
        json.dumps(
            {
                "api_key": credentials.api_key,
                "access_key_id": credentials.access_key_id,
                "secret_access_key": credentials.secret_access_key,
            }
        )
    )


def open_credentials(box: SecretBox, sealed: str) -> dict[str, str]:
    """The per-request credentials sealed by :func:`seal_credentials`."""
    data = json.loads(box.decrypt(sealed))
    return {k: str(data.get(k, "")) for k in ("api_key", "access_key_id", "secret_access_key")}
