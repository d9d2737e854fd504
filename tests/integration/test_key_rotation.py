"""Re-encryption after a secrets-key rotation is a compare-and-set: a configuration saved while
the pass runs is never overwritten with the older one."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from genhub.common.errors import Aborted
from genhub.common.provider_client import ProviderStoreClient
from genhub.common.secrets import SecretBox
from genhub.gateway.catalogue import Catalogue
from genhub.gateway.provider_servicer import ProviderServicer
from genhub.store.v1 import provider_store_pb2
from genhub.v1 import provider_pb2, provider_service_pb2, provider_service_pb2_grpc
from tests.support.stack import Stack, start_stack

OLD_SECRET = "sk-first-0123456789abcdef"
NEW_SECRET = "sk-second-0123456789abcdef"


class SaveDuringPass(ProviderStoreClient):
    """A store client whose listing is followed, before the pass goes on, by an operator's save
    through another gateway (one still on the old key)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack.store.channel)
        self._stack = stack

    async def list_configs(self) -> list[provider_store_pb2.StoredProviderConfig]:
        listed = await super().list_configs()
        await _upsert(self._stack, NEW_SECRET)
        return listed


async def _upsert(stack: Stack, api_key: str) -> None:
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        api = provider_service_pb2_grpc.ProviderServiceStub(channel)
        config = provider_pb2.ProviderConfig(provider="demo", api_key=api_key)
        await api.UpsertProviderConfig(
            provider_service_pb2.UpsertProviderConfigRequest(config=config)
        )


async def test_a_config_saved_during_reencryption_is_not_overwritten(
    vhost: str, database: str, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    async with start_stack(vhost, database, secrets_keys=old) as stack:
        await _upsert(stack, OLD_SECRET)
        rotating = ProviderServicer(
            stack.store, SaveDuringPass(stack), Catalogue(stack.store, 1.0), SecretBox([new, old])
        )
        assert await rotating.reencrypt_stored_secrets() == 1

    raw = await mongo[database]["providers"].find_one({"_id": "demo"})
    assert raw is not None
    # The save made during the pass survives (re-read and re-encrypted under the new key);
    # an unconditional write would have put the first secret back.
    assert SecretBox([new]).decrypt(raw["config"]["api_key_ciphertext"]) == NEW_SECRET
    assert int(raw["config"]["version"]) == 3  # first save, the save meanwhile, re-encryption


async def test_a_stale_expected_version_is_aborted(stack: Stack) -> None:
    await _upsert(stack, OLD_SECRET)
    client = ProviderStoreClient(stack.store.channel)
    stored = await client.get_config("demo")
    with pytest.raises(Aborted) as caught:
        await client.put_config(stored, expected_version=stored.version + 1)
    assert caught.value.reason == "CONFIG_VERSION_MISMATCH"
    saved = await client.put_config(stored, expected_version=stored.version)
    assert saved.version == stored.version + 1
    with pytest.raises(Aborted):  # the version it was based on is gone now
        await client.put_config(stored, expected_version=stored.version)
